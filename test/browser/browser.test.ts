/** TF.js webgpu and wasm backends in headless Chromium give the matMul computed by the cpu backend in Node. */
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import type { BackendReport } from '../../src/backends/index.js';
import { compareArrays } from '../../src/check/compare.js';
import { pattern } from '../backends/workload.js';
import type { BrowserTestApi } from './entry.js';
import { browserUnavailable, startBrowser, type BrowserHarness } from './harness.js';
import { skipUnavailable } from '../helpers/require_backend.js';

const [M, K, N] = [64, 128, 96];

describe('browser (headless Chromium)', function () {
  let harness: BrowserHarness;
  let expected: Float32Array;
  const a = pattern(M * K, 11, 0.5);
  const b = pattern(K * N, 12, 0.5);

  before(async function () {
    const why = await browserUnavailable();
    if (why !== undefined) skipUnavailable(this, ['chromium-webgpu', 'chromium-wasm'], why);
    await tf.setBackend('cpu');
    const c = tf.tidy(() => tf.matMul(tf.tensor2d(a, [M, K]), tf.tensor2d(b, [K, N])));
    expected = (await c.data()) as Float32Array;
    c.dispose();
    harness = await startBrowser();
  });

  after(async () => {
    await harness?.close();
  });

  async function matMulIn(
    backend: 'webgpu' | 'wasm',
  ): Promise<{ report: BackendReport; out: Float32Array }> {
    const r = await harness.page.evaluate(
      async ({ backend, a, b, shape }) => {
        const { tf, useBackend } = (globalThis as unknown as { siglip2Test: BrowserTestApi })
          .siglip2Test;
        const report = await useBackend(backend, {
          wasmPaths: '/node_modules/@tensorflow/tfjs-backend-wasm/dist/',
        });
        const [m, k, n] = shape;
        const c = tf.tidy(() => tf.matMul(tf.tensor2d(a, [m, k]), tf.tensor2d(b, [k, n])));
        const out = Array.from(await c.data());
        c.dispose();
        return { report, out };
      },
      { backend, a: Array.from(a), b: Array.from(b), shape: [M, K, N] },
    );
    console.log(`      ${r.report.reason}`);
    return { report: r.report, out: Float32Array.from(r.out) };
  }

  it('webgpu (SwiftShader without a GPU) gives the cpu matMul within 1e-5', async () => {
    const { report, out } = await matMulIn('webgpu');
    assert.equal(report.name, 'webgpu');
    assert.ok((report.limits?.maxStorageBufferBindingSize ?? 0) > 0);
    const cmp = compareArrays('webgpu matMul', out, expected, [M, N], { atol: 1e-5, rtol: 0 });
    assert.ok(cmp.ok, `maxAbs ${cmp.maxAbs}; console: ${harness.console.join(' | ')}`);
  });

  it('wasm runs every core of this machine as a thread (the package alone would run half) and gives the cpu matMul within 2e-4', async () => {
    const { report, out } = await matMulIn('wasm');
    assert.equal(report.name, 'wasm');
    const page = await harness.page.evaluate(() => {
      const backend = (
        globalThis as unknown as { siglip2Test: BrowserTestApi }
      ).siglip2Test.tf.backend() as unknown as {
        wasm: { tfjs: { getThreadsCount(): number }; PThread: { runningWorkers: unknown[] } };
      };
      return {
        cores: navigator.hardwareConcurrency,
        isolated: crossOriginIsolated,
        pool: backend.wasm.tfjs.getThreadsCount(),
        workers: backend.wasm.PThread.runningWorkers.length,
      };
    });
    // the server sends COOP/COEP, so the page may run threads; the real core count is restored after start-up
    assert.equal(page.isolated, true);
    // every core (2 on this machine; the package's own cap gives cores / 2), up to the package's 8 workers
    const threads = Math.min(page.cores, 8);
    assert.equal(report.threads, threads, report.reason);
    assert.equal(page.pool, threads, 'XNNPACK thread pool size');
    assert.equal(page.workers, threads - 1, 'pthread workers running beside the page thread');
    assert.match(
      report.reason,
      new RegExp(`^wasm with ${threads} threads? \\(default: all ${page.cores} logical cores\\)$`),
    );
    const cmp = compareArrays('wasm matMul', out, expected, [M, N], { atol: 2e-4, rtol: 0 });
    assert.ok(cmp.ok, `maxAbs ${cmp.maxAbs}; console: ${harness.console.join(' | ')}`);
  });
});
