/**
 * Speed of one [256,1152]x[1152,4304] float32 matMul (one so400m MLP layer at 256 tokens) per backend.
 *   node dist/bench/backends.js [--webgpu] [--reps N]
 * Prints GFLOP/s (median of N timed runs after 2 warm-up runs) for wasm with 1 and 2 threads, checks that the
 * 2-thread result equals the 1-thread one to 2e-4, and with --webgpu adds the webgpu backend.
 */
import * as tf from '@tensorflow/tfjs';
import { useBackend, type BackendName, type UseBackendOptions } from '../src/backends/index.js';

const [M, K, N] = [256, 1152, 4304];
const FLOP = 2 * M * K * N;
const reps = Number(process.argv[process.argv.indexOf('--reps') + 1]) || 5;

function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (Math.imul(i + seed, 2654435761) >>> 0) / 4294967296 - 0.5;
  return out;
}
const a = values(M * K, 1);
const b = values(K * N, 2);

async function measure(
  name: BackendName,
  opts: UseBackendOptions,
): Promise<{ label: string; gflops: number; out: Float32Array }> {
  const report = await useBackend(name, opts);
  const x = tf.tensor2d(a, [M, K]);
  const w = tf.tensor2d(b, [K, N]);
  const times: number[] = [];
  let out: Float32Array = new Float32Array();
  for (let i = 0; i < reps + 2; i++) {
    const t0 = performance.now();
    const c = tf.matMul(x, w);
    out = (await c.data()) as Float32Array;
    const dt = performance.now() - t0;
    c.dispose();
    if (i >= 2) times.push(dt);
  }
  tf.dispose([x, w]);
  times.sort((p, q) => p - q);
  const ms = times[Math.floor(times.length / 2)];
  return { label: report.reason, gflops: FLOP / ms / 1e6, out };
}

const rows = [await measure('wasm', { threads: 1 }), await measure('wasm', { threads: 2 })];
let maxAbs = 0;
for (let i = 0; i < rows[0].out.length; i++)
  maxAbs = Math.max(maxAbs, Math.abs(rows[0].out[i] - rows[1].out[i]));
if (process.argv.includes('--webgpu')) rows.push(await measure('webgpu', {}));
console.log(`matMul [${M},${K}]x[${K},${N}], median of ${reps}`);
for (const r of rows) console.log(`${r.gflops.toFixed(1).padStart(7)} GFLOP/s  ${r.label}`);
console.log(
  `speed-up 2 threads / 1 thread: ${(rows[1].gflops / rows[0].gflops).toFixed(2)}x; max |2 threads - 1 thread| = ${maxAbs.toExponential(2)}`,
);
if (maxAbs > 2e-4) {
  console.error('2-thread result differs from the 1-thread result by more than 2e-4');
  process.exitCode = 1;
}
process.exit();
