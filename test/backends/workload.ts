/** A small matMul/softmax/gather workload run on the active backend, to compare backends with the cpu one. */
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { compareArrays, type Tolerance } from '../../src/check/compare.js';

/** Deterministic values in [-scale, scale] (no RNG, so every backend sees the same inputs). */
export function pattern(n: number, seed: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = scale * Math.sin(seed * 7.31 + i * 0.618 + (i % 13) * 0.17);
  return out;
}

export const SHAPES = {
  a: [48, 96],
  b: [96, 80],
  table: [50, 32],
  ids: [3, 0, 49, 17, 3, 25],
} as const;

export interface WorkloadResult {
  matMul: Float32Array;
  softmax: Float32Array;
  gather: Float32Array;
}

/** Runs the workload on the active backend and reads the results back. */
export async function runWorkload(): Promise<WorkloadResult> {
  const { a, b, table, ids } = SHAPES;
  const outs = tf.tidy(() => {
    const x = tf.tensor2d(pattern(a[0] * a[1], 1, 0.5), [a[0], a[1]]);
    const w = tf.tensor2d(pattern(b[0] * b[1], 2, 0.5), [b[0], b[1]]);
    const t = tf.tensor2d(pattern(table[0] * table[1], 3), [table[0], table[1]]);
    const mm = tf.matMul(x, w);
    return [mm, tf.softmax(mm.mul(0.5)), tf.gather(t, tf.tensor1d([...ids], 'int32'))];
  });
  const [matMul, softmax, gather] = (await Promise.all(
    outs.map((o) => o.data()),
  )) as Float32Array[];
  tf.dispose(outs);
  return { matMul, softmax, gather };
}

/** Asserts every output of `actual` is within `tol` of `expected`. */
export function assertWorkloadClose(
  actual: WorkloadResult,
  expected: WorkloadResult,
  tol: Tolerance,
): void {
  const { a, b, table, ids } = SHAPES;
  const rows = [
    compareArrays('matMul', actual.matMul, expected.matMul, [a[0], b[1]], tol),
    compareArrays('softmax', actual.softmax, expected.softmax, [a[0], b[1]], tol),
    compareArrays('gather', actual.gather, expected.gather, [ids.length, table[1]], tol),
  ];
  for (const r of rows)
    assert.ok(
      r.ok,
      `${r.name}: maxAbs ${r.maxAbs} maxRel ${r.maxRel} (tolerance ${JSON.stringify(tol)})`,
    );
}

/** Reads the table rows `ids` straight from the pattern data: the judge for gather results. */
export function expectedRows(
  data: Float32Array,
  cols: number,
  ids: readonly number[],
): Float32Array {
  const out = new Float32Array(ids.length * cols);
  ids.forEach((id, i) => out.set(data.subarray(id * cols, (id + 1) * cols), i * cols));
  return out;
}

/** Deterministic values in [-0.5, 0.5) from an integer hash: fast enough for tables of tens of millions. */
export function hashPattern(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (Math.imul(i + seed, 2654435761) >>> 0) / 4294967296 - 0.5;
  return out;
}
