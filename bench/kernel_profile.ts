/** The per-kernel time table `--profile` prints in the benchmarks (tf.profile of one run). */
import * as tf from '@tensorflow/tfjs';

/** Runs `fn` once under tf.profile and prints the `top` kernels by time, with their share and call counts. */
export async function kernelProfile(
  label: string,
  fn: () => tf.TensorContainer | Promise<tf.TensorContainer>,
  top = 12,
): Promise<void> {
  const info = await tf.profile(fn);
  const byKernel = new Map<string, { ms: number; calls: number }>();
  let total = 0;
  // Count kernels only: `<op>__op` entries and custom-gradient scopes wrap kernels that are listed too.
  for (const k of info.kernels.filter(
    (k) => !k.name.endsWith('__op') && k.name !== 'unnamed scope',
  )) {
    const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    const e = byKernel.get(k.name) ?? { ms: 0, calls: 0 };
    e.ms += ms;
    e.calls += 1;
    byKernel.set(k.name, e);
    total += ms;
  }
  console.log(`  per-kernel profile (${label}), ${total.toFixed(0)} ms in kernels:`);
  for (const [name, e] of [...byKernel].sort((a, b) => b[1].ms - a[1].ms).slice(0, top)) {
    console.log(
      `    ${name.padEnd(22)} ${e.ms.toFixed(0).padStart(7)} ms  ${((100 * e.ms) / total).toFixed(1).padStart(5)} %  ${String(e.calls).padStart(5)} calls`,
    );
  }
}
