import * as tf from '@tensorflow/tfjs';
import { strict as assert } from 'node:assert';
import type { NativeAddon } from '../../src/backends/native/index.js';
import { assertNativeMatchesCpu, random, requireNative, withGemm } from './helpers.js';

describe('native backend: MatMul, BatchMatMul, _FusedMatMul against cpu', function () {
  let addon: NativeAddon;
  const rand = random(11);

  before(function () {
    addon = requireNative(this);
  });
  after(async () => {
    await tf.setBackend('cpu');
  });

  it('2-D products of odd sizes (1, 3, 17, 1000+) with every transpose combination', async () => {
    const sizes: [number, number, number][] = [
      [1, 1, 1],
      [1, 3, 17],
      [3, 17, 1],
      [17, 3, 1000],
      [1000, 17, 3],
      [5, 1031, 7],
      [64, 72, 256],
    ];
    for (const [m, k, n] of sizes) {
      for (const ta of [false, true]) {
        for (const tb of [false, true]) {
          const a = rand(m * k);
          const b = rand(k * n);
          await assertNativeMatchesCpu(`[${m},${k}]x[${k},${n}] ta=${ta} tb=${tb}`, () =>
            tf.matMul(
              tf.tensor(a, ta ? [k, m] : [m, k]),
              tf.tensor(b, tb ? [n, k] : [k, n]),
              ta,
              tb,
            ),
          );
        }
      }
    }
  });

  it('batched products (batch > 1, rank 4, broadcast of a batch-1 operand), transposed', async () => {
    const cases: { a: number[]; b: number[]; ta: boolean; tb: boolean }[] = [
      { a: [3, 17, 5], b: [3, 5, 9], ta: false, tb: false },
      { a: [3, 5, 17], b: [3, 9, 5], ta: true, tb: true },
      { a: [2, 3, 17, 5], b: [2, 3, 5, 1], ta: false, tb: false },
      { a: [4, 7, 5], b: [5, 3], ta: false, tb: false },
      { a: [4, 7, 5], b: [1, 3, 5], ta: false, tb: true },
      { a: [7, 5], b: [4, 5, 3], ta: false, tb: false },
      { a: [2, 1, 3, 4], b: [1, 3, 4, 5], ta: false, tb: false }, // both broadcast: the cpu kernel
    ];
    for (const c of cases) {
      const a = rand(c.a.reduce((x, y) => x * y, 1));
      const b = rand(c.b.reduce((x, y) => x * y, 1));
      await assertNativeMatchesCpu(`${JSON.stringify(c)}`, () =>
        tf.matMul(tf.tensor(a, c.a), tf.tensor(b, c.b), c.ta, c.tb),
      );
    }
  });

  it('fused bias and every activation TF.js fuses (prelu through the cpu kernel)', async () => {
    const [m, k, n] = [17, 33, 19];
    const a = rand(m * k);
    const b = rand(k * n);
    const bias = rand(n);
    const alpha = rand(n);
    const acts = ['linear', 'relu', 'relu6', 'elu', 'sigmoid', 'leakyrelu', 'prelu'] as const;
    for (const activation of acts) {
      for (const tb of [false, true]) {
        await assertNativeMatchesCpu(`fused ${activation} tb=${tb}`, () =>
          tf.fused.matMul({
            a: tf.tensor(a, [m, k]),
            b: tf.tensor(b, tb ? [n, k] : [k, n]),
            transposeB: tb,
            bias: tf.tensor(bias, [n]),
            activation,
            preluActivationWeights: activation === 'prelu' ? tf.tensor(alpha, [n]) : undefined,
            leakyreluAlpha: 0.3,
          }),
        );
      }
    }
    // batched with a bias
    const a3 = rand(3 * m * k);
    await assertNativeMatchesCpu('fused batched bias', () =>
      tf.fused.matMul({
        a: tf.tensor(a3, [3, m, k]),
        b: tf.tensor(b, [k, n]),
        bias: tf.tensor(bias, [n]),
        activation: 'relu',
      }),
    );
  });

  it('gradients of matMul (TF.js derives them as transposed matMuls) agree with cpu', async () => {
    const a = rand(6 * 17 * 5);
    const b = rand(6 * 5 * 3);
    await assertNativeMatchesCpu('grads', () =>
      tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.matMul(x, y).square().sum())([
        tf.tensor(a, [6, 17, 5]),
        tf.tensor(b, [6, 5, 3]),
      ]),
    );
  });

  it('int32 operands and zero-size tensors run the cpu kernel; unequal inner sizes are an error', async () => {
    await tf.setBackend('native');
    const i = tf.matMul(
      tf.tensor2d([1, 2, 3, 4], [2, 2], 'int32'),
      tf.tensor2d([1, 0, 0, 1], [2, 2], 'int32'),
    );
    assert.equal(i.dtype, 'int32');
    assert.deepEqual(Array.from(i.dataSync()), [1, 2, 3, 4]);
    const z = tf.matMul(tf.zeros([0, 3]), tf.zeros([3, 4]));
    assert.deepEqual(z.shape, [0, 4]);
    assert.throws(() => tf.matMul(tf.zeros([2, 3]), tf.zeros([4, 5])), /3.*4|inner/);
    tf.dispose([i, z]);
  });

  // packing is oneDNN's (the default runs products this small on OpenBLAS, which packs per call)
  it('oneDNN packs a weight used repeatedly (once per tensor), keeps results exact, and frees it with the tensor', async () => {
    await tf.setBackend('native');
    await withGemm('onednn', () => packsOnce());
  });

  function packsOnce(): void {
    const before = addon.cacheStats().packed;
    const w = tf.tensor(rand(128 * 96), [128, 96]);
    const x = tf.tensor(rand(9 * 128), [9, 128]);
    const first = tf.matMul(x, w);
    const outs = [1, 2, 3].map(() => tf.matMul(x, w));
    assert.equal(addon.cacheStats().packed, before + 1);
    for (const o of outs) {
      const d = tf.sub(o, first).abs().max().dataSync()[0];
      assert.ok(d <= 1e-5, `packed result differs by ${d}`);
    }
    // transposed use of the same weight is packed separately
    const t = tf.matMul(tf.tensor(rand(5 * 96), [5, 96]), w, false, true);
    const t2 = tf.matMul(tf.tensor(rand(5 * 96), [5, 96]), w, false, true);
    assert.equal(addon.cacheStats().packed, before + 2);
    w.dispose();
    assert.equal(addon.cacheStats().packed, before, 'packed copies outlived their tensor');
    tf.dispose([x, first, ...outs, t, t2]);
  }
});
