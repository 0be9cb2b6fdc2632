import * as tf from '@tensorflow/tfjs';
import { strict as assert } from 'node:assert';
import { geluTanh } from '../../src/layers/kernels/activations.js';
import { scaledDotProductAttention } from '../../src/layers/kernels/attention.js';
import { layerNorm } from '../../src/layers/kernels/layer_norm.js';
import { assertNativeMatchesCpu, random, requireNative, withGemm } from './helpers.js';

// The layer arithmetic of src/layers/kernels on native (C++ ops with C++ gradients) against the same functions on
// cpu (TF.js ops, the version checked against the Hugging Face fixtures).
describe('native backend: LayerNorm, GELU-tanh, softmax, attention and their gradients against cpu', function () {
  const rand = random(7);

  before(function () {
    requireNative(this);
  });
  after(async () => {
    await tf.setBackend('cpu');
  });

  it('Slice and SplitV (strided boxes, rank 1-4, int32) equal cpu', async () => {
    const x = rand(3 * 5 * 7 * 2);
    await assertNativeMatchesCpu('slice/split', () => {
      const t = tf.tensor(x, [3, 5, 7, 2]);
      const k = tf.tensor(x.subarray(0, 35), [5, 7]);
      return [
        t.slice([1, 2, 3, 0], [2, 3, 4, 2]),
        t.slice([0, 0, 6, 1], [-1, -1, 1, 1]),
        t.slice([2], [1]),
        k.slice([1, 2], [3, 4]),
        tf.tensor(x.subarray(0, 9)).slice(3, 4),
        ...tf.split(t, [2, 4, 1], 2),
        ...tf.split(k, 5, 0),
        tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3], 'int32').slice([0, 1], [2, 2]).toFloat(),
      ];
    });
  });

  it('softmax over the last axis, odd shapes', async () => {
    for (const shape of [[1], [3, 17], [2, 5, 1031], [4, 1, 1]]) {
      const x = rand(shape.reduce((a, b) => a * b, 1));
      await assertNativeMatchesCpu(`softmax [${shape}]`, () =>
        tf.softmax(tf.tensor(x, shape).mul(4)),
      );
    }
  });

  it('LayerNorm and its gradients (x, gamma, beta)', async () => {
    for (const shape of [
      [1, 1],
      [3, 17],
      [2, 5, 1031],
      [4, 7, 64],
    ]) {
      const cols = shape[shape.length - 1];
      const x = rand(shape.reduce((a, b) => a * b, 1));
      const g = rand(cols);
      const b = rand(cols);
      const dy = rand(x.length);
      await assertNativeMatchesCpu(
        `layerNorm [${shape}]`,
        () => {
          const xt = tf.tensor(x, shape).mul(3).add(1);
          const f = (xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) =>
            layerNorm(xx, gg as tf.Tensor1D, bb as tf.Tensor1D, 1e-6);
          const y = f(xt, tf.tensor1d(g), tf.tensor1d(b));
          const grads = tf.grads(f)([xt, tf.tensor1d(g), tf.tensor1d(b)], tf.tensor(dy, shape));
          return [y, ...grads];
        },
        1e-4,
      );
    }
  });

  it('GELU-tanh and its gradient (split over threads past 32,768 elements)', async () => {
    for (const shape of [[1], [3, 17], [2, 5, 1031], [3, 16411]]) {
      const x = rand(shape.reduce((a, b) => a * b, 1));
      const dy = rand(x.length);
      await assertNativeMatchesCpu(`gelu [${shape}]`, () => {
        const xt = tf.tensor(x, shape).mul(4);
        return [geluTanh(xt), tf.grad((u: tf.Tensor) => geluTanh(u))(xt, tf.tensor(dy, shape))];
      });
    }
  });

  it('GELU-tanh at its tails: 0 far left, x far right, NaN stays NaN, finite gradients', async () => {
    const x = [-1e30, -200, -88, -20, -9, -1e-30, 0, 1e-30, 9, 20, 88, 200, 1e30, Number.NaN];
    // 9 values ahead of 8: both the vector loop and the scalar tail meet each
    const xs = Float32Array.from([...x, ...x]);
    const dy = Float32Array.from(xs, (_, i) => 1 + i / 10);
    await tf.setBackend('native');
    const [y, dx] = tf.tidy(() => {
      const t = tf.tensor(xs);
      return [geluTanh(t), tf.grad((u: tf.Tensor) => geluTanh(u))(t, tf.tensor(dy))].map((r) =>
        Array.from(r.dataSync()),
      );
    });
    xs.forEach((v, i) => {
      if (Number.isNaN(v)) {
        assert.ok(Number.isNaN(y[i]) && Number.isNaN(dx[i]), `gelu(NaN) gave ${y[i]}, ${dx[i]}`);
      } else if (v <= -20) {
        assert.ok(y[i] === 0 && dx[i] === 0, `gelu(${v}) = ${y[i]}, grad ${dx[i]}: want 0`);
      } else if (v >= 20) {
        assert.equal(y[i], Math.fround(v), `gelu(${v})`);
        assert.ok(
          Math.abs(dx[i] - dy[i]) <= 1e-6 * dy[i],
          `gelu'(${v}) dy = ${dx[i]}, want ${dy[i]}`,
        );
      } else {
        const want = 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
        assert.ok(
          Math.abs(y[i] - want) <= 1e-6 * Math.max(1, Math.abs(want)),
          `gelu(${v}) = ${y[i]}, want ${want}`,
        );
      }
    });
  });

  // default: the per-head forward (OpenBLAS, vec_math.cc softmax rows); onednn: the batched forward
  for (const gemm of [undefined, 'onednn'] as const) {
    it(`attention over every head, with and without a padding mask, Nq != Nk, and its gradients (${gemm ?? 'default'} GEMMs)`, async () => {
      await withGemm(gemm, async () => {
        const cases = [
          { b: 1, nq: 1, nk: 1, heads: 1, d: 1, mask: false },
          { b: 2, nq: 5, nk: 5, heads: 3, d: 4, mask: true },
          { b: 3, nq: 1, nk: 17, heads: 2, d: 8, mask: true }, // the pooling head's shape: one query
          { b: 2, nq: 17, nk: 9, heads: 4, d: 6, mask: false },
          { b: 2, nq: 33, nk: 33, heads: 2, d: 72, mask: true },
        ];
        for (const c of cases) {
          const dim = c.heads * c.d;
          const q = rand(c.b * c.nq * dim);
          const k = rand(c.b * c.nk * dim);
          const v = rand(c.b * c.nk * dim);
          const dy = rand(c.b * c.nq * dim);
          // the first image keeps all keys, the others lose their last third (at least one key stays)
          const mask = new Float32Array(c.b * c.nk).fill(1);
          for (let i = 1; i < c.b; i++) {
            for (let j = Math.max(1, c.nk - Math.floor(c.nk / 3)); j < c.nk; j++)
              mask[i * c.nk + j] = 0;
          }
          await assertNativeMatchesCpu(
            `attention ${JSON.stringify(c)}`,
            () => {
              const m = c.mask ? tf.tensor(mask, [c.b, c.nk]) : undefined;
              const f = (qq: tf.Tensor, kk: tf.Tensor, vv: tf.Tensor) =>
                scaledDotProductAttention(qq.mul(2), kk, vv, c.heads, m);
              const qt = tf.tensor(q, [c.b, c.nq, dim]);
              const kt = tf.tensor(k, [c.b, c.nk, dim]);
              const vt = tf.tensor(v, [c.b, c.nk, dim]);
              const y = f(qt, kt, vt);
              const grads = tf.grads(f)([qt, kt, vt], tf.tensor(dy, [c.b, c.nq, dim]));
              return [y, ...grads];
            },
            1e-4,
          );
        }
      });
    });
  }

  it('a masked key gets no weight and no gradient', async () => {
    await tf.setBackend('native');
    const q = tf.tensor(rand(2 * 3 * 4), [2, 3, 4]);
    const k = tf.tensor(rand(2 * 3 * 4), [2, 3, 4]);
    const v = tf.tensor(rand(2 * 3 * 4), [2, 3, 4]);
    const mask = tf.tensor2d([1, 1, 0, 1, 1, 1], [2, 3]);
    const vChanged = tf.tidy(() => v.add(tf.tensor([0, 0, 100, 0, 0, 0], [2, 3, 1])));
    const a = scaledDotProductAttention(q, k, v, 2, mask);
    const b = scaledDotProductAttention(q, k, vChanged, 2, mask);
    const image0 = tf.tidy(
      () =>
        a
          .slice([0], [1])
          .sub(b.slice([0], [1]))
          .abs()
          .max()
          .dataSync()[0],
    );
    assert.equal(image0, 0);
    const dv = tf.grad((vv: tf.Tensor) => scaledDotProductAttention(q, k, vv, 2, mask).sum())(v);
    assert.deepEqual(Array.from(dv.slice([0, 2], [1, 1]).dataSync()), [0, 0, 0, 0]);
    tf.dispose([q, k, v, mask, vChanged, a, b, dv]);
  });
});
