/**
 * One LoRA linear layer's forward pass and gradients (x, A, B; the kernel frozen) on the native backend, with the
 * low-rank terms accumulated onto the large products in place (the `productPlusLowRank` override) against the same
 * op with that override removed (a matMul and an add), interleaved round by round in one process. Checks that
 * both give the same values, then prints medians and fastest rounds.
 *
 *   npm run bench:lora-linear [-- --model so400m|base] [--rows 2048] [--rank 16] [--rounds 10] [--threads N]
 *
 * so400m's widths are 1152 and 4304, base's 768 and 3072; 2,048 rows are a batch of 8 images of 256 patches.
 */
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../src/backends/index.js';
import { NATIVE_LAYER_OVERRIDES } from '../src/backends/native/ops.js';
import { linear } from '../src/layers/kernels/linear.js';
import { setLayerKernelOverrides } from '../src/layers/kernels/overrides.js';
import { arg, median } from './cli.js';

const WIDTHS: Record<string, [number, number]> = { so400m: [1152, 4304], base: [768, 3072] };

/** Seconds of one forward pass + the gradients of x, A and B, and those gradients' values. */
function step(
  x: tf.Tensor2D,
  kernel: tf.Tensor2D,
  bias: tf.Tensor1D,
  a: tf.Tensor2D,
  b: tf.Tensor2D,
  dy: tf.Tensor2D,
): { seconds: number; values: Float32Array[] } {
  const start = performance.now();
  const grads = tf.grads((u, la, lb) =>
    linear(u, kernel, bias, { a: la as tf.Tensor2D, b: lb as tf.Tensor2D, scale: 2 }),
  )([x, a, b], dy);
  const values = grads.map((g) => g.dataSync() as Float32Array);
  const seconds = (performance.now() - start) / 1e3;
  tf.dispose(grads);
  return { seconds, values };
}

function maxRelDiff(got: Float32Array[], want: Float32Array[]): number {
  let worst = 0;
  want.forEach((w, i) => {
    let diff = 0;
    let scale = 0;
    for (let j = 0; j < w.length; j++) {
      diff = Math.max(diff, Math.abs(got[i][j] - w[j]));
      scale = Math.max(scale, Math.abs(w[j]));
    }
    worst = Math.max(worst, diff / (scale || 1));
  });
  return worst;
}

async function main(): Promise<void> {
  const model = arg('model', 'so400m');
  const widths = WIDTHS[model];
  if (widths === undefined) throw new Error(`--model must be so400m or base, got ${model}`);
  const rows = Number(arg('rows', '2048'));
  const rank = Number(arg('rank', '16'));
  const rounds = Number(arg('rounds', '10'));
  for (const [name, v] of Object.entries({ rows, rank, rounds })) {
    if (!(Number.isInteger(v) && v >= 1))
      throw new Error(`--${name} must be a positive integer, got ${v}`);
  }
  const threads = process.argv.includes('--threads') ? Number(arg('threads', '0')) : undefined;
  const report = await useBackend('native', { threads });
  console.log(report.reason);
  tf.enableProdMode();
  const [d, f] = widths;
  const withoutOverride = { ...NATIVE_LAYER_OVERRIDES, productPlusLowRank: undefined };
  const variants = {
    'accumulated in place': NATIVE_LAYER_OVERRIDES,
    'matMul + add': withoutOverride,
  };
  console.log(
    `${model}: ${rows} rows, rank ${rank}, forward + gradients of x, A and B, ${rounds} rounds (seconds)`,
  );
  for (const [label, k, n] of [
    ['q/k/v/out_proj', d, d],
    ['fc1', d, f],
    ['fc2', f, d],
  ] as const) {
    const x = tf.randomNormal([rows, k], 0, 1, 'float32', 1) as tf.Tensor2D;
    const kernel = tf.randomNormal([k, n], 0, 0.03, 'float32', 2) as tf.Tensor2D;
    const bias = tf.randomNormal([n], 0, 0.1, 'float32', 3) as tf.Tensor1D;
    const a = tf.randomNormal([k, rank], 0, 0.03, 'float32', 4) as tf.Tensor2D;
    const b = tf.randomNormal([rank, n], 0, 0.03, 'float32', 5) as tf.Tensor2D;
    const dy = tf.randomNormal([rows, n], 0, 1, 'float32', 6) as tf.Tensor2D;
    const times = new Map<string, number[]>(Object.keys(variants).map((v) => [v, []]));
    const first = new Map<string, Float32Array[]>();
    for (let round = -1; round < rounds; round++) {
      for (const [v, overrides] of Object.entries(variants)) {
        setLayerKernelOverrides('native', overrides);
        const r = step(x, kernel, bias, a, b, dy);
        if (round < 0) first.set(v, r.values);
        else times.get(v)!.push(r.seconds);
      }
    }
    setLayerKernelOverrides('native', NATIVE_LAYER_OVERRIDES);
    const [[, want], [, got]] = [...first.entries()];
    const diff = maxRelDiff(got, want);
    if (!(diff <= 1e-4)) throw new Error(`${label}: the two variants differ by ${diff} (relative)`);
    const gflop = (2 * 2 * rows * k * n) / 1e9;
    const cells = [...times.entries()].map(
      ([v, t]) => `${v} ${median(t).toFixed(4)} (fastest ${Math.min(...t).toFixed(4)})`,
    );
    const ratio = median(times.get('accumulated in place')!) / median(times.get('matMul + add')!);
    console.log(
      `  ${label} [${k},${n}]: ${cells.join(', ')}; in place / matMul + add ${ratio.toFixed(2)}x; ` +
        `the two large products ${gflop.toFixed(1)} GFLOP; gradients agree to ${diff.toExponential(1)}`,
    );
    tf.dispose([x, kernel, bias, a, b, dy]);
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
