/**
 * Parity across backends: the same inputs through the same converted model on each backend (in this Node
 * process: cpu, wasm, webgpu through Dawn, tensorflow; in headless Chromium: chromium-webgpu, chromium-wasm),
 * every output compared backend against backend and against a fixture's golden outputs. Fixed-resolution and
 * NaFlex models alike.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { type BackendName, useBackend } from '../backends/index.js';
import type { Tolerance } from '../check/compare.js';
import { parseConfig } from '../model/config.js';
import { type BrowserBackend, runInChromium } from './chromium.js';
import { randomInputs, readFixtureCase } from './inputs.js';
import { runInNode } from './node.js';
import { compareRuns } from './report.js';
import type { BackendRun, ParityInputs, ParityOutputs, ParityReport } from './types.js';

/** Backends run in this Node process (names of useBackend). */
export const NODE_BACKENDS = ['cpu', 'wasm', 'native', 'webgpu', 'tensorflow'] as const;
/** Backends run in headless Chromium: `chromium-<useBackend name>`. */
export const BROWSER_BACKENDS = ['chromium-webgpu', 'chromium-wasm'] as const;
export type ParityBackend = (typeof NODE_BACKENDS)[number] | (typeof BROWSER_BACKENDS)[number];
export const PARITY_BACKENDS: readonly ParityBackend[] = [...NODE_BACKENDS, ...BROWSER_BACKENDS];

export interface ParityOptions {
  backends?: ParityBackend[];
  /** A fixture folder: its inputs are used and its outputs are the reference. */
  fixture?: string;
  tolerance?: Tolerance;
  threads?: number;
  /** Report a backend that cannot run here without failing the report (default false). */
  allowMissing?: boolean;
  /** Called after each backend run. */
  onRun?: (run: BackendRun) => void;
}

/** A converted model folder for `dir`: itself, or (for a Hugging Face checkpoint) a temporary conversion. */
async function convertedModel(dir: string): Promise<{ dir: string; cleanup: () => void }> {
  if (existsSync(join(dir, 'siglip.json'))) return { dir: resolve(dir), cleanup: () => undefined };
  if (!existsSync(join(dir, 'config.json'))) {
    throw new Error(
      `${dir}: neither a converted model (siglip.json) nor a checkpoint (config.json)`,
    );
  }
  const tmp = mkdtempSync(join(os.tmpdir(), 'siglip2-parity-'));
  // The converter builds the model on the active backend: make it one that is initialized (every run selects its own).
  await useBackend('cpu');
  const { convertCheckpoint } = await import('../../converter/convert.js');
  await convertCheckpoint(dir, join(tmp, 'model'), { dtype: 'float32' });
  return { dir: join(tmp, 'model'), cleanup: () => rmSync(tmp, { recursive: true, force: true }) };
}

const isBrowser = (b: ParityBackend): b is (typeof BROWSER_BACKENDS)[number] =>
  (BROWSER_BACKENDS as readonly string[]).includes(b);

/** Runs the parity report. A backend that cannot run here has status `unavailable` and no rows. */
export async function runParity(modelDir: string, opts: ParityOptions = {}): Promise<ParityReport> {
  const backends = opts.backends ?? ['cpu', 'wasm', 'webgpu'];
  for (const b of backends) {
    if (!PARITY_BACKENDS.includes(b)) {
      throw new Error(`parity: unknown backend '${b}' (${PARITY_BACKENDS.join(', ')})`);
    }
  }
  const model = await convertedModel(modelDir);
  try {
    let inputs: ParityInputs;
    let golden: ParityOutputs | undefined;
    let tolerance = opts.tolerance ?? { atol: 1e-4, rtol: 1e-4 };
    let inputsName: string;
    if (opts.fixture) {
      const fixture = await readFixtureCase(opts.fixture);
      inputs = fixture.inputs;
      golden = fixture.golden;
      tolerance = opts.tolerance ?? fixture.tolerance;
      inputsName = `${opts.fixture} (inputs.safetensors)`;
    } else {
      const manifest = JSON.parse(readFileSync(join(model.dir, 'siglip.json'), 'utf8')) as {
        config: unknown;
      };
      inputs = randomInputs(parseConfig(manifest.config, join(model.dir, 'siglip.json')));
      inputsName =
        `deterministic random inputs (seed 1): 2 images${inputs.spatialShapes ? ' (NaFlex, one padded)' : ''}, ` +
        '3 texts';
    }
    const runs: BackendRun[] = [];
    for (const b of backends) {
      if (isBrowser(b)) continue;
      const run = await runInNode(b as BackendName, model.dir, inputs, opts.threads);
      runs.push(run);
      opts.onRun?.(run);
    }
    const browser = backends
      .filter(isBrowser)
      .map((b) => b.slice('chromium-'.length) as BrowserBackend);
    if (browser.length) {
      for (const r of await runInChromium(browser, model.dir, inputs)) {
        runs.push(r);
        opts.onRun?.(r);
      }
    }
    const rows = compareRuns(runs, golden, tolerance);
    const unavailable = runs.filter((r) => r.status === 'unavailable').map((r) => r.backend);
    return {
      model: modelDir,
      inputs: inputsName,
      tolerance,
      runs,
      rows,
      unavailable,
      ok:
        runs.every((r) => r.status !== 'failed') &&
        (opts.allowMissing === true || unavailable.length === 0) &&
        rows.every((r) => r.comparison.ok),
    };
  } finally {
    model.cleanup();
  }
}
