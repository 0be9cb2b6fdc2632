/**
 * Parity across backends: the same inputs through the same converted model on each backend (in this Node
 * process: cpu, wasm, webgpu through Dawn, tensorflow; in headless Chromium: chromium-webgpu, chromium-wasm),
 * every output compared backend against backend and against a fixture's golden outputs.
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BackendName, useBackend } from '../backends/index.js';
import { launchChromium } from '../browser/chromium.js';
import { startStaticServer } from '../browser/server.js';
import { type Comparison, compareArrays, type Tolerance } from '../check/compare.js';
import { readCases, toleranceOf } from '../check/fixture.js';
import { readSafetensors } from '../io/safetensors.js';
import { loadSiglip } from '../loader/load.js';
import '../loader/node.js';
import { parseConfig, type SiglipConfig } from '../model/config.js';
import { disposeOutputs, outputsByHfName, type SiglipOutputs } from '../model/siglip_model.js';
import { seededRandom as rng } from '../util/random.js';

export const NODE_BACKENDS = ['cpu', 'wasm', 'native', 'webgpu', 'tensorflow'] as const;
export const BROWSER_BACKENDS = ['chromium-webgpu', 'chromium-wasm'] as const;
export type ParityBackend = (typeof NODE_BACKENDS)[number] | (typeof BROWSER_BACKENDS)[number];
export const PARITY_BACKENDS: readonly ParityBackend[] = [...NODE_BACKENDS, ...BROWSER_BACKENDS];

export interface NamedArray {
  data: Float32Array | Int32Array;
  shape: number[];
}

export interface ParityInputs {
  pixelValues: NamedArray;
  inputIds: NamedArray;
}

/** Output name -> values, names as in the fixtures (`logits_per_image`, `vision.pooler_output`…). */
export type ParityOutputs = Record<string, NamedArray>;

export interface BackendRun {
  backend: ParityBackend;
  /** The one-line backend report, or why it could not run. */
  reason: string;
  outputs?: ParityOutputs;
  seconds: number;
}

export interface ParityRow {
  output: string;
  a: string;
  b: string;
  comparison: Comparison;
}

export interface ParityReport {
  model: string;
  inputs: string;
  tolerance: Tolerance;
  runs: BackendRun[];
  rows: ParityRow[];
  ok: boolean;
}

function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5 && !existsSync(join(dir, 'package.json')); i++) dir = dirname(dir);
  return dir;
}

/** Deterministic inputs for a fixed-resolution model: 2 images in [-1, 1], 3 texts of random ids. */
export function randomInputs(config: SiglipConfig, seed = 1): ParityInputs {
  const v = config.visionConfig;
  const t = config.textConfig;
  if (!v || !t) throw new Error('parity: the model needs both towers');
  const size = (v as { imageSize?: number }).imageSize;
  if (size === undefined) {
    throw new Error(
      'parity: random inputs are only made for fixed-resolution models; pass --fixture',
    );
  }
  const r = rng(seed);
  const px = new Float32Array(2 * 3 * size * size).map(() => r() * 2 - 1);
  const L = t.maxPositionEmbeddings;
  const ids = new Int32Array(3 * L).map(() => Math.floor(r() * t.vocabSize));
  return {
    pixelValues: { data: px, shape: [2, 3, size, size] },
    inputIds: { data: ids, shape: [3, L] },
  };
}

export const PARITY_OUTPUTS = [
  'logits_per_image',
  'logits_per_text',
  'image_embeds',
  'text_embeds',
  'vision.last_hidden_state',
  'vision.pooler_output',
  'text.last_hidden_state',
  'text.pooler_output',
] as const;

async function collect(out: SiglipOutputs): Promise<ParityOutputs> {
  const tensors = outputsByHfName(out);
  const result: ParityOutputs = {};
  for (const [name, t] of Object.entries(tensors)) {
    result[name] = { data: (await t.data()) as Float32Array, shape: t.shape };
  }
  return result;
}

async function runInNode(
  backend: BackendName,
  modelDir: string,
  inputs: ParityInputs,
  threads?: number,
): Promise<BackendRun> {
  const t0 = performance.now();
  let reason: string;
  try {
    reason = (await useBackend(backend, { threads })).reason;
  } catch (e) {
    return { backend, reason: `unavailable: ${(e as Error).message.split('\n')[0]}`, seconds: 0 };
  }
  let model: Awaited<ReturnType<typeof loadSiglip>> | undefined;
  const px = tf.tensor(inputs.pixelValues.data, inputs.pixelValues.shape, 'float32');
  const ids = tf.tensor(inputs.inputIds.data, inputs.inputIds.shape, 'int32');
  let out: SiglipOutputs = {};
  try {
    model = await loadSiglip(modelDir);
    out = model.forward({ pixelValues: px, inputIds: ids });
    return {
      backend,
      reason,
      outputs: await collect(out),
      seconds: (performance.now() - t0) / 1000,
    };
  } catch (e) {
    return {
      backend,
      reason: `failed: ${(e as Error).message.split('\n')[0]} (${reason})`,
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    disposeOutputs(out);
    tf.dispose([px, ids]);
    model?.dispose();
  }
}

const PAGE = `<!doctype html><meta charset="utf-8"><title>siglip2 parity</title>
<script type="module">
import * as siglip2 from '/siglip2.js';
globalThis.siglip2 = siglip2;
globalThis.siglip2Ready = true;
</script>`;

/** Runs the model in headless Chromium on each of `backends` (served from 127.0.0.1). */
export async function runInChromium(
  backends: ('webgpu' | 'wasm')[],
  modelDir: string,
  inputs: ParityInputs,
): Promise<BackendRun[]> {
  const web = join(packageRoot(), 'dist', 'web');
  if (!existsSync(join(web, 'siglip2.js'))) {
    throw new Error(`${web}/siglip2.js is missing: run npm run build:web`);
  }
  const server = await startStaticServer({
    mounts: { '/': web, '/model/': modelDir },
    pages: { '/parity.html': PAGE },
  });
  const browser = await launchChromium();
  const runs: BackendRun[] = [];
  try {
    for (const backend of backends) {
      const page = await browser.newPage();
      const messages: string[] = [];
      page.on('pageerror', (e) => messages.push(e.message));
      const t0 = performance.now();
      try {
        await page.goto(`${server.origin}/parity.html`);
        await page.waitForFunction(
          () => (globalThis as { siglip2Ready?: boolean }).siglip2Ready,
          null,
          {
            timeout: 60000,
          },
        );
        const r = await page.evaluate(
          async ({ backend, px, pxShape, ids, idsShape }) => {
            type Lib = typeof import('../web.js');
            const s = (globalThis as unknown as { siglip2: Lib }).siglip2;
            const model = await s.loadSiglip(`${location.origin}/model/`, {
              backend,
              backendOptions: { wasmPaths: `${location.origin}/wasm/` },
            });
            const tf = s.tf;
            const pt = tf.tensor(px, pxShape, 'float32');
            const it = tf.tensor(ids, idsShape, 'int32');
            const out = model.forward({ pixelValues: pt, inputIds: it });
            const pick = s.outputsByHfName(out);
            const outputs: Record<string, { data: number[]; shape: number[] }> = {};
            for (const [k, t] of Object.entries(pick)) {
              outputs[k] = { data: Array.from(await t.data()), shape: t.shape };
            }
            s.disposeOutputs(out);
            tf.dispose([pt, it]);
            model.dispose();
            return { reason: model.backendReport?.reason ?? backend, outputs };
          },
          {
            backend,
            px: Array.from(inputs.pixelValues.data),
            pxShape: inputs.pixelValues.shape,
            ids: Array.from(inputs.inputIds.data),
            idsShape: inputs.inputIds.shape,
          },
        );
        const outputs: ParityOutputs = {};
        for (const [k, v] of Object.entries(r.outputs)) {
          outputs[k] = { data: Float32Array.from(v.data), shape: v.shape };
        }
        runs.push({
          backend: `chromium-${backend}`,
          reason: `chromium: ${r.reason}`,
          outputs,
          seconds: (performance.now() - t0) / 1000,
        });
      } catch (e) {
        runs.push({
          backend: `chromium-${backend}`,
          reason: `failed: ${(e as Error).message.split('\n')[0]}${messages.length ? ` (${messages.join(' | ')})` : ''}`,
          seconds: (performance.now() - t0) / 1000,
        });
      } finally {
        await page.close();
      }
    }
  } finally {
    await browser.close();
    await server.close();
  }
  return runs;
}

export interface ParityOptions {
  backends?: ParityBackend[];
  /** A fixture folder: its inputs are used and its outputs are the reference. */
  fixture?: string;
  tolerance?: Tolerance;
  threads?: number;
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
  const { convertCheckpoint } = await import('../../converter/convert.js');
  await convertCheckpoint(dir, join(tmp, 'model'), { dtype: 'float32' });
  return { dir: join(tmp, 'model'), cleanup: () => rmSync(tmp, { recursive: true, force: true }) };
}

/** Runs the parity report. Rows where a backend is unavailable are left out (its run says why). */
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
      const ins = await readSafetensors(join(opts.fixture, 'inputs.safetensors'));
      const px = ins.get('pixel_values');
      const ids = ins.get('input_ids');
      if (!px || !ids) {
        throw new Error(`${opts.fixture}/inputs.safetensors: needs pixel_values and input_ids`);
      }
      inputs = {
        pixelValues: { data: px.data as Float32Array, shape: px.shape },
        inputIds: { data: Int32Array.from(ids.data as ArrayLike<number>), shape: ids.shape },
      };
      const outs = await readSafetensors(join(opts.fixture, 'outputs.safetensors'));
      golden = {};
      for (const name of PARITY_OUTPUTS) {
        const o = outs.get(name);
        if (o) golden[name] = { data: o.data as Float32Array, shape: o.shape };
      }
      if (!opts.tolerance) tolerance = toleranceOf(await readCases(opts.fixture));
      inputsName = `${opts.fixture} (inputs.safetensors)`;
    } else {
      const manifest = JSON.parse(readFileSync(join(model.dir, 'siglip.json'), 'utf8')) as {
        config: unknown;
      };
      inputs = randomInputs(parseConfig(manifest.config, join(model.dir, 'siglip.json')));
      inputsName = 'deterministic random inputs (seed 1): 2 images, 3 texts';
    }
    const runs: BackendRun[] = [];
    for (const b of backends) {
      if (b.startsWith('chromium-')) continue;
      const run = await runInNode(b as BackendName, model.dir, inputs, opts.threads);
      runs.push(run);
      opts.onRun?.(run);
    }
    const browser = backends
      .filter((b) => b.startsWith('chromium-'))
      .map((b) => b.slice('chromium-'.length) as 'webgpu' | 'wasm');
    if (browser.length) {
      let browserRuns: BackendRun[];
      try {
        browserRuns = await runInChromium(browser, model.dir, inputs);
      } catch (e) {
        browserRuns = browser.map((b) => ({
          backend: `chromium-${b}` as ParityBackend,
          reason: `unavailable: ${(e as Error).message.split('\n')[0]}`,
          seconds: 0,
        }));
      }
      for (const r of browserRuns) {
        runs.push(r);
        opts.onRun?.(r);
      }
    }
    const rows = compareRuns(runs, golden, tolerance);
    return {
      model: modelDir,
      inputs: inputsName,
      tolerance,
      runs,
      rows,
      ok: runs.every((r) => !r.reason.startsWith('failed')) && rows.every((r) => r.comparison.ok),
    };
  } finally {
    model.cleanup();
  }
}

/** Every output of every pair of runs, and of every run against the golden outputs. */
export function compareRuns(
  runs: BackendRun[],
  golden: ParityOutputs | undefined,
  tolerance: Tolerance,
): ParityRow[] {
  const rows: ParityRow[] = [];
  const ran = runs.filter((r) => r.outputs);
  const refs: { name: string; outputs: ParityOutputs }[] = [
    ...(golden ? [{ name: 'fixture', outputs: golden }] : []),
    ...ran.map((r) => ({ name: r.backend, outputs: r.outputs! })),
  ];
  for (let i = 0; i < ran.length; i++) {
    for (let j = 0; j < refs.length; j++) {
      const ref = refs[j];
      if (ref.name !== 'fixture' && ran.findIndex((r) => r.backend === ref.name) >= i) continue;
      for (const name of PARITY_OUTPUTS) {
        const a = ran[i].outputs![name];
        const b = ref.outputs[name];
        if (!a || !b) continue;
        rows.push({
          output: name,
          a: ran[i].backend,
          b: ref.name,
          comparison: compareArrays(name, a.data, b.data, b.shape, tolerance, a.shape),
        });
      }
    }
  }
  return rows;
}

function fmt(x: number): string {
  return Number.isFinite(x) ? x.toExponential(1) : String(x);
}

/** The report as text: the runs, then one table per pair (max abs / max rel per output). */
export function formatParity(report: ParityReport): string {
  const lines: string[] = [];
  lines.push(`model: ${report.model}`);
  lines.push(`inputs: ${report.inputs}`);
  lines.push(`tolerance: atol ${report.tolerance.atol}, rtol ${report.tolerance.rtol}`);
  for (const r of report.runs) {
    lines.push(
      `  ${r.backend.padEnd(16)} ${r.outputs ? `${r.seconds.toFixed(1)} s` : '-'}  ${r.reason}`,
    );
  }
  const pairs = [...new Set(report.rows.map((r) => `${r.a} vs ${r.b}`))];
  const outputs = [...new Set(report.rows.map((r) => r.output))];
  const width = Math.max(...pairs.map((p) => p.length), 10);
  lines.push('');
  lines.push(`${'max abs / max rel'.padEnd(width)}  ${outputs.map((o) => o.padEnd(19)).join(' ')}`);
  for (const p of pairs) {
    const cells = outputs.map((o) => {
      const row = report.rows.find((r) => `${r.a} vs ${r.b}` === p && r.output === o);
      if (!row) return ''.padEnd(19);
      const c = row.comparison;
      return `${fmt(c.maxAbs)}/${fmt(c.maxRel)}${c.ok ? '' : '!'}`.padEnd(19);
    });
    lines.push(`${p.padEnd(width)}  ${cells.join(' ')}`);
  }
  const bad = report.rows.filter((r) => !r.comparison.ok);
  const missing = report.runs.filter((r) => !r.outputs);
  lines.push('');
  lines.push(
    report.ok
      ? `all ${report.rows.length} comparisons within tolerance`
      : `${bad.length} of ${report.rows.length} comparisons out of tolerance (marked !)` +
          (missing.length ? `; ${missing.length} backend(s) did not run` : ''),
  );
  return lines.join('\n');
}
