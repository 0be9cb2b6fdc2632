import * as tf from '@tensorflow/tfjs';
import { strict as assert } from 'node:assert';
import type { NativeAddon } from '../../src/backends/native/index.js';
import { NATIVE_LAYER_OVERRIDES } from '../../src/backends/native/ops.js';
import { SiglipEncoderLayer } from '../../src/layers/encoder_layer.js';
import { setLayerKernelOverrides } from '../../src/layers/kernels/overrides.js';
import {
  assertNativeMatchesCpu,
  maxDiff,
  random,
  requireNative,
  valuesOn,
  withGemm,
} from './helpers.js';

interface Case {
  batch: number;
  tokens: number;
  hidden: number;
  heads: number;
  intermediate: number;
  /** tokens of each sequence that are not padding (a NaFlex key mask), or none */
  valid?: number[];
}

/** An encoder layer whose every weight (biases and LayerNorms too) is drawn from a seeded generator. */
function seededLayer(c: Case, seed: number): SiglipEncoderLayer {
  const layer = new SiglipEncoderLayer({
    name: 'layer',
    hiddenSize: c.hidden,
    numHeads: c.heads,
    intermediateSize: c.intermediate,
  });
  layer.build([c.batch, c.tokens, c.hidden]);
  const rand = random(seed);
  layer.setWeights(
    layer.weights.map((w) => {
      const shape = w.shape as number[];
      return tf.tensor(rand(tf.util.sizeFromShape(shape)), shape).mul(0.5);
    }),
  );
  return layer;
}

/** Frees a layer built by seededLayer (Layer.dispose refuses a layer built without a symbolic apply). */
function disposeLayer(layer: SiglipEncoderLayer): void {
  for (const w of layer.weights) w.dispose();
}

function inputs(c: Case, seed: number): tf.Tensor[] {
  const x = tf.tensor(random(seed)(c.batch * c.tokens * c.hidden), [c.batch, c.tokens, c.hidden]);
  if (c.valid === undefined) return [x];
  const mask = c.valid.flatMap((v) => Array.from({ length: c.tokens }, (_, i) => (i < v ? 1 : 0)));
  return [x, tf.tensor2d(mask, [c.batch, c.tokens])];
}

/** The layer's output on the active backend, with the names of the kernels it ran. */
async function runLayer(c: Case): Promise<{ values: Float32Array; kernels: string[] }> {
  const layer = seededLayer(c, 11);
  const xs = inputs(c, 12);
  let values = new Float32Array();
  const info = await tf.profile(() => {
    const y = layer.apply(xs.length > 1 ? xs : xs[0]) as tf.Tensor;
    values = Float32Array.from(y.dataSync());
    y.dispose();
  });
  tf.dispose(xs);
  disposeLayer(layer);
  return { values, kernels: info.kernels.map((k) => k.name) };
}

const CASES: Case[] = [
  { batch: 1, tokens: 1, hidden: 8, heads: 2, intermediate: 12 },
  { batch: 3, tokens: 17, hidden: 24, heads: 3, intermediate: 37, valid: [17, 5, 1] },
  { batch: 2, tokens: 9, hidden: 16, heads: 1, intermediate: 64 },
  // 1,200 rows: the products run on oneDNN under the default choice (OpenBLAS below 1,024 rows on AVX2)
  { batch: 3, tokens: 400, hidden: 16, heads: 2, intermediate: 40, valid: [400, 399, 130] },
  { batch: 1, tokens: 1031, hidden: 12, heads: 3, intermediate: 20 },
  // products large enough to be split over the threads: by columns (hidden 128), by rows (hidden 96, under 4
  // cache lines per thread); under 1,024 rows, so the default runs the layer as one parallel region
  { batch: 2, tokens: 98, hidden: 128, heads: 4, intermediate: 320, valid: [98, 41] },
  { batch: 1, tokens: 150, hidden: 96, heads: 3, intermediate: 200 },
];

/** The cases the default runs as one parallel region on a machine of 2+ threads (every product on OpenBLAS). */
const TEAM_CASES = CASES.filter((c) => c.batch * c.tokens < 1024);

// The native backend runs a whole encoder layer as one native call at inference (native/src/encoder_layer.cc).
describe('native backend: the one-call encoder layer', function () {
  let addon: NativeAddon;

  before(function () {
    addon = requireNative(this);
  });
  after(async () => {
    setLayerKernelOverrides('native', NATIVE_LAYER_OVERRIDES);
    await tf.setBackend('cpu');
  });

  for (const gemm of [undefined, 'onednn', 'openblas']) {
    it(`matches the layer on cpu: odd sizes, batch > 1, padding masks, 1,000+ tokens (${gemm ?? 'default'} GEMMs)`, async () => {
      await withGemm(gemm, async () => {
        for (const c of CASES) {
          const label = `[${c.batch},${c.tokens},${c.hidden}] ${c.heads} heads, ${c.intermediate}${c.valid ? `, valid ${c.valid}` : ''}`;
          await tf.setBackend('cpu');
          const want = (await runLayer(c)).values;
          await tf.setBackend('native');
          const got = await runLayer(c);
          assert.deepEqual(
            got.kernels.filter((k) => k.startsWith('Native')),
            ['NativeEncoderLayer'],
            `${label}: the layer ran as one native op`,
          );
          const { diff, scale } = maxDiff(got.values, want);
          assert.ok(
            diff <= 2e-5 * scale + 1e-6,
            `${label}: max diff ${diff} over max |cpu| ${scale}`,
          );
        }
      });
    });
  }

  it('computes exactly what the native backend computes op by op', async () => {
    await tf.setBackend('native');
    for (const c of CASES) {
      const whole = await runLayer(c);
      setLayerKernelOverrides('native', { ...NATIVE_LAYER_OVERRIDES, encoderLayer: undefined });
      try {
        const ops = await runLayer(c);
        assert.ok(!ops.kernels.includes('NativeEncoderLayer'));
        assert.deepEqual(whole.values, ops.values, `[${c.batch},${c.tokens},${c.hidden}]`);
      } finally {
        setLayerKernelOverrides('native', NATIVE_LAYER_OVERRIDES);
      }
    }
  });

  it('runs the layer as one parallel region where every product is on OpenBLAS, with the same bits', async () => {
    const shared = addon.info().threads >= 2; // on one thread there is nothing to share
    await tf.setBackend('native');
    for (const gemm of [undefined, 'openblas', 'onednn']) {
      await withGemm(gemm, async () => {
        for (const c of CASES) {
          const label = `${gemm ?? 'default'} GEMMs, [${c.batch},${c.tokens},${c.hidden}]`;
          const before = addon.cacheStats().encoderLayerTeamCalls;
          const team = await runLayer(c);
          const teamRuns = addon.cacheStats().encoderLayerTeamCalls - before;
          const onBlas = gemm === 'openblas' || (gemm === undefined && TEAM_CASES.includes(c));
          const expected = shared && onBlas ? 1 : 0;
          assert.equal(teamRuns, expected, `${label}: layers run as one region`);
          process.env.SIGLIP2_NATIVE_LAYER_TEAM = 'off';
          try {
            const apart = await runLayer(c);
            assert.equal(
              addon.cacheStats().encoderLayerTeamCalls - before,
              teamRuns,
              `${label}: off`,
            );
            assert.deepEqual(
              team.values,
              apart.values,
              `${label}: one region against kernel by kernel`,
            );
          } finally {
            delete process.env.SIGLIP2_NATIVE_LAYER_TEAM;
          }
        }
      });
    }
  });

  it('steps aside under a gradient (the gradients match cpu) and for a LoRA adapter', async () => {
    const c = CASES[1];
    const gradOf = () => {
      const layer = seededLayer(c, 21);
      const [x, mask] = inputs(c, 22);
      const dy = tf.tensor(random(23)(x.size), x.shape);
      const f = (xx: tf.Tensor) => layer.apply([xx, mask]) as tf.Tensor;
      const dx = tf.grad(f)(x, dy);
      disposeLayer(layer);
      return dx;
    };
    await assertNativeMatchesCpu('dx through the layer', gradOf, 1e-4);
    const dx = await valuesOn('native', gradOf);
    assert.ok(
      dx[0].some((v) => v !== 0),
      'a gradient flows to x',
    );

    const withLora = () => {
      const layer = seededLayer(c, 31);
      const rand = random(33);
      const adapters = [layer.selfAttn.qProj, layer.mlp.fc2].map((l) => {
        const [inDim, outDim] = l.kernel.shape as number[];
        l.lora = {
          a: new tf.LayerVariable(tf.tensor(rand(inDim * 2), [inDim, 2]), 'float32'),
          b: new tf.LayerVariable(tf.tensor(rand(2 * outDim), [2, outDim]), 'float32'),
          scale: 2,
        };
        return l.lora;
      });
      const [x, mask] = inputs(c, 32);
      const y = layer.apply([x, mask]) as tf.Tensor;
      for (const a of adapters) tf.dispose([a.a.read(), a.b.read()]);
      disposeLayer(layer);
      return y;
    };
    await assertNativeMatchesCpu('a layer with LoRA adapters', withLora, 2e-5);
  });

  it('names the weight or mask whose shape does not fit, and keeps at most 64 MiB of scratch', async () => {
    await tf.setBackend('native');
    const c = CASES[2];
    const layer = seededLayer(c, 41);
    const [x] = inputs(c, 42);
    const weights = layer.wholeLayerWeights();
    assert.ok(weights !== undefined);
    const encoderLayer = NATIVE_LAYER_OVERRIDES.encoderLayer!;
    const badBias = tf.zeros([c.intermediate + 1]) as tf.Tensor1D;
    assert.throws(
      () =>
        encoderLayer(
          x,
          { ...weights, fc1: { ...weights.fc1, bias: badBias } },
          { numHeads: 1, layerNormEps: 1e-6 },
        ),
      /native EncoderLayer: fc1\.bias is \[65\], expected \[64\] for x \[2,9,16\]/,
    );
    assert.throws(
      () => encoderLayer(x, weights, { numHeads: 1, layerNormEps: 1e-6, keyMask: tf.ones([2, 8]) }),
      /native EncoderLayer: key mask \[2,8\] must be \[2, 9\] \(x \[2,9,16\]\)/,
    );
    assert.throws(
      () => encoderLayer(x, weights, { numHeads: 3, layerNormEps: 1e-6 }),
      /native EncoderLayer: hidden size 16 is not divisible by 3 heads/,
    );
    badBias.dispose();
    // 4 x 512 tokens x 1152 hidden, 4304 intermediate: 101 MiB of intermediates, freed after the call
    const big = seededLayer(
      { batch: 4, tokens: 512, hidden: 1152, heads: 16, intermediate: 4304 },
      43,
    );
    const y = big.apply(tf.zeros([4, 512, 1152])) as tf.Tensor;
    assert.equal(y.shape.join(','), '4,512,1152');
    assert.ok(addon.cacheStats().encoderLayerScratchBytes <= 64 * 2 ** 20);
    tf.dispose([x, y]);
    disposeLayer(layer);
    disposeLayer(big);
  });
});
