import * as tf from '@tensorflow/tfjs';
import { strict as assert } from 'node:assert';
import '../../src/layers/kernels/segment_sum_cpu.js';
import { seededRandom } from '../../src/util/random.js';
import { useTestBackend } from '../helpers/backend.js';

describe('kernels: one-pass UnsortedSegmentSum on cpu (the gradient of gather)', () => {
  before(async () => {
    await useTestBackend('cpu');
  });

  it('equals out[ids[i]] += x[i] computed in plain JS, ids out of range dropped, any row shape', () => {
    const rand = seededRandom(5);
    const n = 7;
    const segments = 5;
    const row = [2, 3];
    const size = 6;
    const x = Float32Array.from({ length: n * size }, () => rand() - 0.5);
    const ids = Int32Array.from([4, 0, 4, -1, 2, 9, 0]);
    const expected = new Float32Array(segments * size);
    ids.forEach((s, i) => {
      if (s < 0 || s >= segments) return;
      for (let j = 0; j < size; j++) expected[s * size + j] += x[i * size + j];
    });
    const out = tf.unsortedSegmentSum(
      tf.tensor(x, [n, ...row]),
      tf.tensor1d(ids, 'int32'),
      segments,
    );
    assert.deepEqual(out.shape, [segments, ...row]);
    const got = out.dataSync();
    for (let i = 0; i < got.length; i++)
      assert.ok(Math.abs(got[i] - expected[i]) < 1e-6, `element ${i}`);
    out.dispose();
  });

  it('is the gradient of gather', () => {
    const table = tf.variable(tf.randomNormal([6, 4], 0, 1, 'float32', 1));
    const ids = tf.tensor1d([1, 3, 1, 5], 'int32');
    const w = tf.randomNormal([4, 4], 0, 1, 'float32', 2);
    const { grads } = tf.variableGrads(
      () => tf.gather(table, ids).mul(w).sum() as tf.Scalar,
      [table],
    );
    const g = grads[table.name].arraySync() as number[][];
    const wv = w.arraySync() as number[][];
    const expected = [0, 1, 2, 3, 4, 5].map((r) =>
      [0, 1, 2, 3].map((c) => [1, 3, 1, 5].reduce((s, id, i) => s + (id === r ? wv[i][c] : 0), 0)),
    );
    g.forEach((row, r) => row.forEach((v, c) => assert.ok(Math.abs(v - expected[r][c]) < 1e-5)));
    tf.dispose([table, ids, w, ...Object.values(grads)]);
  });
});
