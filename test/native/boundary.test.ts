import { strict as assert } from 'node:assert';
import type { NativeAddon } from '../../src/backends/native/index.js';
import { requireNative } from './helpers.js';

/** A Float32Array whose buffer has been transferred away (detached). */
function detached(n: number): Float32Array {
  const a = new Float32Array(n);
  structuredClone(a.buffer, { transfer: [a.buffer] });
  return a;
}

const f32 = (n: number) => new Float32Array(n);

// Bad input handed straight to the addon: each must be a JS error naming the kernel and the shapes, never a crash.
describe('native backend: bad input at the Node-API boundary', function () {
  let addon: NativeAddon;

  before(function () {
    addon = requireNative(this);
  });

  const matmul = (a: unknown, b: unknown, out: unknown, m = 2, k = 3, n = 4) =>
    addon.matmul(
      a as Float32Array,
      b as Float32Array,
      out as Float32Array,
      1,
      1,
      m,
      k,
      n,
      false,
      false,
      null,
      0,
      0,
      0,
    );

  it('MatMul: wrong dtype, mismatched shapes, zero size, detached buffer, bad numbers', () => {
    const shapes = /a \[1,2,3\], b \[1,3,4\]/;
    assert.throws(
      () => matmul(new Float64Array(6), f32(12), f32(8)),
      (e: Error) =>
        /native MatMul: a must be a Float32Array/.test(e.message) && shapes.test(e.message),
    );
    assert.throws(
      () => matmul(f32(6), new Int32Array(12), f32(8)),
      /native MatMul: b must be a Float32Array.*\[1,3,4\]/,
    );
    assert.throws(
      () => matmul(f32(6), [1, 2, 3], f32(8)),
      /native MatMul: b must be a Float32Array/,
    );
    assert.throws(
      () => matmul(f32(6), f32(11), f32(8)),
      /native MatMul: b has 11 elements, expected 12 \(a \[1,2,3\], b \[1,3,4\]\)/,
    );
    assert.throws(
      () => matmul(f32(6), f32(12), f32(9)),
      /native MatMul: out has 9 elements, expected 8/,
    );
    assert.throws(
      () => matmul(f32(0), f32(0), f32(0), 0, 3, 4),
      /native MatMul: m must be an integer >= 1, got 0/,
    );
    assert.throws(
      () => matmul(f32(0), f32(12), f32(8)),
      /native MatMul: a is zero-size \(a \[1,2,3\]/,
    );
    assert.throws(
      () => matmul(detached(6), f32(12), f32(8)),
      /native MatMul: a is backed by a detached ArrayBuffer \(a \[1,2,3\]/,
    );
    assert.throws(
      () => matmul(f32(6), f32(12), f32(8), 2.5),
      /native MatMul: m must be an integer/,
    );
    const shared = f32(12);
    assert.throws(
      () => matmul(shared.subarray(0, 6), f32(12), shared.subarray(4, 12)),
      /out overlaps an input/,
    );
    assert.throws(
      () => addon.matmul(f32(6), f32(12), f32(16), 2, 3, 2, 3, 4, false, false, null, 0, 0, 0),
      /batch sizes do not broadcast/,
    );
    assert.throws(
      () => addon.matmul(f32(6), f32(12), f32(8), 1, 1, 2, 3, 4, false, false, f32(3), 0, 0, 0),
      /native MatMul: bias has 3 elements, expected 4/,
    );
  });

  it('LayerNorm, GELU, softmax and attention name themselves and their shapes', () => {
    assert.throws(
      () => addon.layerNorm(f32(6), f32(2), f32(3), f32(6), 2, 3, 1e-6),
      /native LayerNorm: gamma has 2 elements, expected 3 \(x \[2,3\], gamma\/beta \[3\]\)/,
    );
    assert.throws(
      () => addon.layerNormBackward(f32(6), f32(3), detached(6), null, null, null, 2, 3, 1e-6),
      /native LayerNormBackward: dy is backed by a detached ArrayBuffer \(x \[2,3\]/,
    );
    assert.throws(
      () => addon.geluTanh(new Float64Array(4) as unknown as Float32Array, f32(4), 4),
      /native GeluTanh: x must be a Float32Array \(float32 tensor\) \(x \[4\]\)/,
    );
    assert.throws(
      () => addon.geluTanhBackward(f32(4), f32(4), f32(5), 4),
      /native GeluTanhBackward: dx has 5 elements, expected 4/,
    );
    assert.throws(
      () => addon.softmax(f32(6), f32(6), 2, 4),
      /native Softmax: logits has 6 elements, expected 8 \(logits \[2,4\]\)/,
    );
    assert.throws(
      () => addon.attention(f32(24), f32(24), f32(20), null, f32(24), 2, 3, 3, 2, 2, 0.5),
      /native Attention: v has 20 elements, expected 24 \(q \[2,3,4\], k\/v \[2,3,4\], 2 heads of 2\)/,
    );
    assert.throws(
      () => addon.attention(f32(24), f32(24), f32(24), f32(5), f32(24), 2, 3, 3, 2, 2, 0.5),
      /native Attention: mask has 5 elements, expected 6/,
    );
    assert.throws(
      () =>
        addon.attentionBackward(
          f32(24),
          f32(24),
          f32(24),
          null,
          f32(24),
          f32(24),
          f32(24),
          new Uint8Array(24) as unknown as Float32Array,
          2,
          3,
          3,
          2,
          2,
          0.5,
        ),
      /native AttentionBackward: dv must be a Float32Array/,
    );
    assert.throws(() => addon.setThreads(0), /threads must be an integer >= 1/);
  });

  // x [2, 3, 4], 2 heads, intermediate 5: each weight replaceable, every other argument valid
  const encoderLayer = (
    replace: Record<number, unknown> = {},
    sizes: number[] = [2, 3, 4, 2, 5],
    keys: number[] = [0, 0, 0, 0, 0, 0],
  ) => {
    const [b, n, d, , f] = sizes;
    const args: unknown[] = [
      f32(b * n * d),
      ...[d, d, d * d, d, d * d, d, d * d, d, d * d, d, d, d, d * f, f, f * d, d].map(f32),
      null,
      f32(b * n * d),
      ...sizes,
      1e-6,
      0.5,
      keys,
    ];
    for (const [i, v] of Object.entries(replace)) args[Number(i)] = v;
    return (addon.encoderLayer as (...a: unknown[]) => number)(...args);
  };

  it('EncoderLayer: wrong dtype, mismatched sizes, zero size, detached buffer, aliasing, bad keys', () => {
    assert.equal(encoderLayer(), 0);
    const shapes = /\(x \[2,3,4\], 2 heads, intermediate 5\)/;
    const fails = (re: RegExp, ...a: Parameters<typeof encoderLayer>) => {
      assert.throws(() => encoderLayer(...a), re);
      assert.throws(() => encoderLayer(...a), shapes);
    };
    fails(/native EncoderLayer: x must be a Float32Array/, { 0: new Float64Array(24) });
    fails(/native EncoderLayer: q_proj\.kernel has 15 elements, expected 16/, { 3: f32(15) });
    fails(/native EncoderLayer: fc1\.bias has 4 elements, expected 5/, { 14: f32(4) });
    fails(/native EncoderLayer: layer_norm2\.beta is backed by a detached ArrayBuffer/, {
      12: detached(4),
    });
    fails(/native EncoderLayer: mask has 5 elements, expected 6/, { 17: f32(5) });
    const x = f32(24);
    fails(/native EncoderLayer: out overlaps x/, { 0: x, 18: x });
    assert.throws(
      () => encoderLayer({}, [2, 3, 4, 3, 5]),
      /native EncoderLayer: hidden is not divisible by heads \(x \[2,3,4\], 3 heads, intermediate 5\)/,
    );
    fails(/native EncoderLayer: packKeys must have 6 entries/, {}, undefined, [0, 0]);
    assert.throws(
      () => encoderLayer({}, [0, 3, 4, 2, 5]),
      /native EncoderLayer: batch must be an integer >= 1/,
    );
  });
});
