/**
 * The browser wasm thread plan and the hardwareConcurrency override, with a stand-in navigator (the real thing is
 * tested in headless Chromium by test/browser/browser.test.ts).
 */
import assert from 'node:assert/strict';
import {
  MAX_WASM_THREADS,
  planBrowserWasm,
  withHardwareConcurrency,
} from '../../src/backends/wasm_browser.js';

type Globals = { navigator?: object; crossOriginIsolated?: boolean };

describe('backends: wasm threads in a browser (plan)', () => {
  const g = globalThis as Globals;
  const saved = Object.getOwnPropertyDescriptor(globalThis, 'navigator');

  function page(cores: number, isolated: boolean): void {
    class FakeNavigator {
      get hardwareConcurrency(): number {
        return cores;
      }
    }
    Object.defineProperty(globalThis, 'navigator', {
      value: new FakeNavigator(),
      configurable: true,
      writable: true,
    });
    g.crossOriginIsolated = isolated;
  }

  afterEach(() => {
    if (saved) Object.defineProperty(globalThis, 'navigator', saved);
    else delete g.navigator;
    delete g.crossOriginIsolated;
  });

  it('asks for every core by default, at most the cores and 8, and 1 without cross-origin isolation', () => {
    page(2, true);
    assert.deepEqual(planBrowserWasm(undefined), { threads: 2, cores: 2, isolated: true });
    assert.equal(planBrowserWasm(1).threads, 1);
    assert.equal(planBrowserWasm(6).threads, 2, 'never more than the cores');
    page(32, true);
    assert.equal(planBrowserWasm(undefined).threads, MAX_WASM_THREADS);
    page(4, false);
    assert.deepEqual(planBrowserWasm(4), { threads: 1, cores: 4, isolated: false });
    assert.throws(() => planBrowserWasm(0), /threads must be a positive integer, got 0/);
    assert.throws(() => planBrowserWasm(1.5), /threads must be a positive integer/);
  });

  it('hardwareConcurrency reads the value given while the backend starts, and the real one after (also on failure)', async () => {
    page(2, true);
    const nav = g.navigator as { hardwareConcurrency: number };
    const seen = await withHardwareConcurrency(4, async () => nav.hardwareConcurrency);
    assert.equal(seen, 4);
    assert.equal(nav.hardwareConcurrency, 2);
    assert.equal(Object.getOwnPropertyDescriptor(nav, 'hardwareConcurrency'), undefined);
    await assert.rejects(
      withHardwareConcurrency(6, async () => {
        throw new Error('start failed');
      }),
      /start failed/,
    );
    assert.equal(nav.hardwareConcurrency, 2);
  });
});
