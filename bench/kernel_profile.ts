/** The per-kernel time table `--profile` prints in the benchmarks (tf.profile of one run). */
import * as tf from '@tensorflow/tfjs';

/** What the table reads of each kernel tf.profile lists (an input TF.js does not pass is listed as null). */
export interface ProfiledKernel {
  name: string;
  inputShapes: readonly (readonly number[] | null)[];
  kernelTimeMs: number | { error: string } | Promise<number | { error: string }>;
}

/** One row of the table: a kernel (and its input shapes, by shape), its time and calls. */
export interface ProfileRow {
  key: string;
  ms: number;
  calls: number;
  /** The row's rate where every call is a matMul whose arithmetic the shapes tell (see `matMulFlops`). */
  gflops?: number;
}

/** Kernels whose first two inputs are the matMul's operands (the native backend's fused linear: x and the kernel). */
const MATMULS = new Set(['BatchMatMul', '_FusedMatMul', 'MatMul', 'NativeFusedLinear']);

/**
 * The floating-point operations (2 m n k per batch entry) of a matMul kernel, from its input shapes alone: the
 * profile does not list the transpose flags, so every reading of them under which the inner dimensions agree is
 * tried, and the count is given only when they all agree on it (a square weight read either way does). Undefined
 * for other kernels and where the shapes leave it open.
 */
export function matMulFlops(
  name: string,
  shapes: readonly (readonly number[] | null)[],
): number | undefined {
  const [a, b] = shapes;
  if (!MATMULS.has(name) || !a || !b || a.length < 2 || b.length < 2) return undefined;
  const [a0, a1] = a.slice(-2);
  const [b0, b1] = b.slice(-2);
  const size = (s: readonly number[]) => s.slice(0, -2).reduce((x, y) => x * y, 1);
  const batch = Math.max(size(a), size(b));
  const counts = new Set<number>();
  for (const ta of [false, true]) {
    for (const tb of [false, true]) {
      const [m, k] = ta ? [a1, a0] : [a0, a1];
      const [kb, n] = tb ? [b1, b0] : [b0, b1];
      if (k === kb) counts.add(2 * batch * m * n * k);
    }
  }
  return counts.size === 1 ? [...counts][0] : undefined;
}

/**
 * The table's rows, longest first, and the total kernel time. Counts kernels only (`<op>__op` entries and custom
 * gradient scopes wrap kernels that are listed too); `byShape` keeps each kernel's input shapes apart.
 */
export async function profileRows(
  kernels: readonly ProfiledKernel[],
  byShape = false,
): Promise<{ rows: ProfileRow[]; total: number }> {
  const rows = new Map<string, ProfileRow & { flops?: number }>();
  let total = 0;
  for (const k of kernels) {
    if (k.name.endsWith('__op') || k.name === 'unnamed scope') continue;
    const time = await k.kernelTimeMs;
    const ms = typeof time === 'number' ? time : 0;
    const key = byShape ? `${k.name} ${JSON.stringify(k.inputShapes)}` : k.name;
    const row = rows.get(key) ?? { key, ms: 0, calls: 0, flops: 0 };
    const flops = matMulFlops(k.name, k.inputShapes);
    row.flops = row.flops === undefined || flops === undefined ? undefined : row.flops + flops;
    row.ms += ms;
    row.calls += 1;
    rows.set(key, row);
    total += ms;
  }
  const list = [...rows.values()].map(({ flops, ...row }) =>
    flops !== undefined && flops > 0 && row.ms > 0 ? { ...row, gflops: flops / row.ms / 1e6 } : row,
  );
  return { rows: list.sort((x, y) => y.ms - x.ms), total };
}

/** `--profile` and `--profile-shapes` (which implies it) on a benchmark's command line. */
export function profileFlags(argv: readonly string[] = process.argv): {
  profile: boolean;
  byShape: boolean;
} {
  const byShape = argv.includes('--profile-shapes');
  return { profile: byShape || argv.includes('--profile'), byShape };
}

/**
 * Runs `fn` once under tf.profile and prints the `top` kernels by time, with their share, call counts and, for
 * matMuls, GFLOP/s; `byShape` lists each kernel's input shapes apart (`--profile-shapes`).
 */
export async function kernelProfile(
  label: string,
  fn: () => tf.TensorContainer | Promise<tf.TensorContainer>,
  top = 12,
  byShape = false,
): Promise<void> {
  const info = await tf.profile(fn);
  const { rows, total } = await profileRows(info.kernels, byShape);
  console.log(`  per-kernel profile (${label}), ${total.toFixed(0)} ms in kernels:`);
  // a longer key (a kernel with many inputs, by shape) runs past the column
  const width = Math.min(72, Math.max(22, ...rows.slice(0, top).map((r) => r.key.length)));
  for (const r of rows.slice(0, top)) {
    const rate = r.gflops === undefined ? '' : `  ${r.gflops.toFixed(0).padStart(5)} GFLOP/s`;
    console.log(
      `    ${r.key.padEnd(width)} ${r.ms.toFixed(0).padStart(7)} ms  ${((100 * r.ms) / total).toFixed(1).padStart(5)} %  ${String(r.calls).padStart(5)} calls${rate}`,
    );
  }
}
