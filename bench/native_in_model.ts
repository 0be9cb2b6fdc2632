/**
 * Where a native forward pass spends its time, call by call: every call into the addon is timed from JavaScript,
 * grouped (matMuls by shape), and each matMul's rate in the model is set beside the rate of the same product
 * measured alone in this process, on the library the addon runs it on. The wall time not spent in addon calls is
 * TF.js and JavaScript between the kernels. Each timed run of the model alternates with a run of the same encoder
 * straight on the addon (bench/addon_encoder.ts, no TF.js): their ratio, in one process and one period of the
 * machine's speed, is what the TF.js layers cost on top of the kernels.
 *
 *   npm run bench:in-model [-- --model base|so400m] [--tower vision|text] [--batch 1] [--runs 10] [--op-by-op]
 *
 * (vision: `batch` images; text: 8 texts of 64 tokens). Random weights, as `npm run bench`. The backend runs each
 * encoder layer as one addon call (`encoderLayer`); `--op-by-op` turns that off, so that the layer's products,
 * attention and LayerNorms are timed one by one (the TF.js work between them comes back with it).
 */
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../src/backends/index.js';
import { ACTIVATIONS, type NativeAddon } from '../src/backends/native/addon.js';
import type { NativeBackend } from '../src/backends/native/backend.js';
import { NATIVE_LAYER_OVERRIDES } from '../src/backends/native/ops.js';
import { setLayerKernelOverrides } from '../src/layers/kernels/overrides.js';
import { AddonOnlyEncoder } from './addon_encoder.js';
import { arg, median } from './cli.js';
import { towerRunner } from './tower_runner.js';

const activationName = (code: number) =>
  Object.entries(ACTIVATIONS).find(([, c]) => c === code)?.[0] ?? `activation ${code}`;

interface CallStats {
  calls: number;
  ms: number;
  /** for matMuls: the product as one 2-D GEMM [m, k] x [k, n] (a shared weight), or undefined */
  gemm?: { m: number; k: number; n: number };
}

/** An object with the addon's members whose functions are timed into `stats` while `timing.on`. */
function timedAddon(
  addon: NativeAddon,
  stats: Map<string, CallStats>,
  timing: { on: boolean },
): NativeAddon {
  const wrapped: Record<string, unknown> = {};
  for (const [name, member] of Object.entries(addon)) {
    if (typeof member !== 'function') {
      wrapped[name] = member;
      continue;
    }
    const fn = member as (...args: unknown[]) => unknown;
    wrapped[name] = (...args: unknown[]) => {
      const t0 = performance.now();
      const result = fn.apply(addon, args);
      if (!timing.on) return result;
      const ms = performance.now() - t0;
      let key = name;
      let gemm: CallStats['gemm'];
      if (name === 'matmul') {
        // matmul(a, b, out, batchA, batchB, m, k, n, transposeA, transposeB, bias, activation, alpha, packKey, residual)
        const [batchA, batchB, m, k, n] = args.slice(3, 8) as number[];
        const flags = [
          args[8] ? 'A^T' : '',
          args[9] ? 'B^T' : '',
          args[10] ? 'bias' : '',
          args[11] ? activationName(args[11] as number) : '',
          args[14] ? 'residual' : '',
        ].filter((f) => f !== '');
        key = `matmul ${batchA > 1 ? `${batchA}x` : ''}[${m},${k}]x${batchB > 1 ? `${batchB}x` : ''}[${k},${n}]${flags.length ? ` (${flags.join(', ')})` : ''}`;
        if (batchB === 1) gemm = { m: batchA * m, k, n };
      }
      const s = stats.get(key) ?? { calls: 0, ms: 0, gemm };
      s.calls++;
      s.ms += ms;
      stats.set(key, s);
      return result;
    };
  }
  return wrapped as unknown as NativeAddon;
}

async function main(): Promise<void> {
  const modelName = arg('model', 'base');
  const tower = arg('tower', 'vision');
  const batch = Number(arg('batch', '1'));
  const runs = Math.max(1, Number(arg('runs', '10')));
  const report = await useBackend('native');
  if (process.argv.includes('--op-by-op')) {
    setLayerKernelOverrides('native', { ...NATIVE_LAYER_OVERRIDES, encoderLayer: undefined });
  }
  if (report.name !== 'native')
    throw new Error(`bench:in-model needs the native backend: ${report.reason}`);
  console.log(`backend: ${report.reason}`);
  const backend = tf.backend() as NativeBackend;
  const addon = backend.addon;
  const stats = new Map<string, CallStats>();
  const timing = { on: false };
  // The backend calls `this.addon.<kernel>` at every call: swapping the member times every kernel it runs.
  Object.defineProperty(backend, 'addon', { value: timedAddon(addon, stats, timing) });

  const runner = towerRunner(modelName, tower === 'text' ? 'text' : 'vision', batch);
  const { dir, what, encoderShape, run } = runner;
  const encoder = new AddonOnlyEncoder(addon, encoderShape);
  for (let i = 0; i < 2; i++) {
    await run(); // warm-up: packed weights, pooled outputs
    encoder.forward();
  }
  const modelMs: number[] = [];
  const encoderMs: number[] = [];
  for (let i = 0; i < runs; i++) {
    timing.on = true;
    let t0 = performance.now();
    await run();
    modelMs.push(performance.now() - t0);
    timing.on = false;
    t0 = performance.now();
    encoder.forward();
    encoderMs.push(performance.now() - t0);
  }
  const wall = modelMs.reduce((a, b) => a + b, 0) / runs;
  encoder.dispose();
  runner.dispose();

  const inAddon = [...stats.values()].reduce((a, s) => a + s.ms, 0) / runs;
  console.log(
    `${dir} ${tower}, ${what}: ${wall.toFixed(1)} ms per run (mean of ${runs}); in addon calls ` +
      `${inAddon.toFixed(1)} ms, between them (TF.js, JavaScript) ${(wall - inAddon).toFixed(1)} ms`,
  );
  const [m, e] = [median(modelMs), median(encoderMs)];
  console.log(
    `the encoder straight on the addon (no TF.js, no embeddings or head), alternating with the model run by run: ` +
      `median ${e.toFixed(1)} ms against the model's ${m.toFixed(1)} ms (model / addon only ${(m / e).toFixed(2)}x); ` +
      `pairs ${modelMs.map((t, i) => `${t.toFixed(0)}/${encoderMs[i].toFixed(0)}`).join(' ')}`,
  );
  const info = addon.info();
  const below = info.openBlasBelowRows;
  console.log(
    '| call | ms per run | share | calls per run | GFLOP/s in the model | the same product alone (measured after the runs) | library |',
  );
  console.log('|---|---|---|---|---|---|---|');
  for (const [key, s] of [...stats].sort((a, b) => b[1].ms - a[1].ms)) {
    const perRun = s.ms / runs;
    let rates = ' | | ';
    if (s.gemm) {
      const { m, k, n } = s.gemm;
      const flop = 2 * m * k * n;
      const openblas = m < below;
      // benchSgemm: 3 = OpenBLAS in OpenMP tiles, 1 = oneDNN with packed weights (the addon's default per rows)
      const alone = flop / addon.benchSgemm(m, k, n, openblas ? 3 : 1, 5) / 1e9;
      rates = ` ${(flop / ((s.ms / s.calls) * 1e6)).toFixed(0)} | ${alone.toFixed(0)} | ${openblas ? 'OpenBLAS' : 'oneDNN'}`;
    }
    console.log(
      `| ${key} | ${perRun.toFixed(1)} | ${((100 * perRun) / wall).toFixed(1)} % | ${(s.calls / runs).toFixed(0)} |${rates} |`,
    );
  }
}

await main();
