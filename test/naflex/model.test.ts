import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { runFixture } from '../../src/check/index.js';
import { readSafetensors, type LoadedTensor } from '../../src/io/safetensors.js';
import { Siglip2VisionEmbeddings } from '../../src/layers/index.js';
import {
  type SiglipModel,
  SiglipVisionModel,
  disposeTowerOutputs,
  loadHfCheckpoint,
  parseConfig,
} from '../../src/model/index.js';
import { fixture } from '../helpers/fixtures.js';

const CASE = 'siglip2_naflex_tiny';

async function useBackend(name: string): Promise<void> {
  assert.ok(await tf.setBackend(name), `backend ${name} failed to start`);
  await tf.ready();
}

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function tensorOf(t: LoadedTensor | undefined, name: string): tf.Tensor {
  assert.ok(t, `fixture lacks ${name}`);
  return tf.tensor(t.data, t.shape, t.data instanceof Float32Array ? 'float32' : 'int32');
}

describe('NaFlex model (siglip2_naflex_tiny fixture)', function () {
  this.timeout(120000);
  after(async () => useBackend('cpu'));

  for (const backend of ['cpu', 'wasm']) {
    it(`siglip2 check: every output within tolerance on ${backend}, padding rows included`, async () => {
      await useBackend(backend);
      const report = await runFixture(fixture(CASE), { backend });
      const names = report.outputs.map((o) => o.name);
      for (const extra of ['vision.resized_position_embeddings', 'vision.patch_embeds']) {
        assert.ok(names.includes(extra), `${extra} not compared`);
      }
      const bad = report.outputs.filter((o) => !o.ok);
      assert.deepEqual(
        bad.map((o) => `${o.name}: max abs ${o.maxAbs}`),
        [],
        `${backend}: outputs out of tolerance`,
      );
      assert.ok(report.ok);
    });
  }

  for (const backend of ['cpu', 'wasm'])
    describe(`through the API on ${backend}`, () => {
      let model: SiglipModel;
      let golden: Map<string, LoadedTensor>;
      let inputs: Map<string, LoadedTensor>;

      before(async () => {
        await useBackend(backend);
        model = await loadHfCheckpoint(fixture(CASE), { towers: 'vision' });
        golden = await readSafetensors(fixture(CASE, 'outputs.safetensors'));
        inputs = await readSafetensors(fixture(CASE, 'inputs.safetensors'));
      });
      after(() => model.dispose());

      it('predict on a batch of mixed shapes matches the golden outputs and leaks no tensors', () => {
        const vision = model.vision as SiglipVisionModel;
        const pixelValues = tensorOf(inputs.get('pixel_values'), 'pixel_values');
        // int32 mask (as read from int64) is converted inside; the caller's tensors are left alone.
        const pixelAttentionMask = tensorOf(inputs.get('pixel_attention_mask'), 'mask');
        const spatialShapes = tensorOf(inputs.get('spatial_shapes'), 'spatial_shapes');
        const before = tf.memory().numTensors;
        const out = vision.predict({ pixelValues, pixelAttentionMask, spatialShapes });
        assert.equal(tf.memory().numTensors, before + 2);
        const last = golden.get('vision.last_hidden_state') as LoadedTensor;
        const pooled = golden.get('vision.pooler_output') as LoadedTensor;
        assert.deepEqual(out.lastHiddenState.shape, last.shape);
        assert.ok(maxAbs(out.lastHiddenState.dataSync(), last.data) < 1e-4);
        assert.ok(maxAbs((out.poolerOutput as tf.Tensor).dataSync(), pooled.data) < 1e-4);
        disposeTowerOutputs(out);
        assert.equal(tf.memory().numTensors, before);
        assert.ok(!pixelAttentionMask.isDisposed && !spatialShapes.isDisposed);
        tf.dispose([pixelValues, pixelAttentionMask, spatialShapes]);
      });

      it('each image alone, without padding, gives its golden valid rows and pooled embedding', () => {
        const vision = model.vision as SiglipVisionModel;
        const pv = inputs.get('pixel_values') as LoadedTensor;
        const st = inputs.get('spatial_shapes') as LoadedTensor;
        const last = golden.get('vision.last_hidden_state') as LoadedTensor;
        const pooled = golden.get('vision.pooler_output') as LoadedTensor;
        const [batch, maxPatches, patchDim] = pv.shape;
        const d = last.shape[2];
        for (let i = 0; i < batch; i++) {
          const h = st.data[2 * i];
          const w = st.data[2 * i + 1];
          const n = h * w;
          const start = i * maxPatches * patchDim;
          const out = tf.tidy(() => {
            const o = vision.predict({
              pixelValues: tf.tensor3d(pv.data.slice(start, start + n * patchDim) as Float32Array, [
                1,
                n,
                patchDim,
              ]),
              pixelAttentionMask: tf.ones([1, n]),
              spatialShapes: tf.tensor2d([[h, w]], [1, 2], 'int32'),
            });
            return [o.lastHiddenState, o.poolerOutput as tf.Tensor];
          });
          const wantRows = last.data.slice(i * maxPatches * d, (i * maxPatches + n) * d);
          assert.ok(maxAbs(out[0].dataSync(), wantRows) < 1e-4, `image ${i} rows`);
          assert.ok(
            maxAbs(out[1].dataSync(), pooled.data.slice(i * d, (i + 1) * d)) < 1e-4,
            `image ${i} pooled`,
          );
          tf.dispose(out);
        }
      });

      it('exposes the embeddings parts (patch embeds, resized positions) matching the goldens', () => {
        const layer = model.vision?.model.getLayer('embeddings');
        assert.ok(layer instanceof Siglip2VisionEmbeddings);
        const pixels = tensorOf(inputs.get('pixel_values'), 'pixel_values');
        const shapes = tensorOf(inputs.get('spatial_shapes'), 'spatial_shapes');
        const patch = layer.patchEmbeds(pixels);
        const pos = layer.resizedPositionEmbeddings(shapes, pixels.shape[1] as number);
        const g1 = golden.get('vision.patch_embeds') as LoadedTensor;
        const g2 = golden.get('vision.resized_position_embeddings') as LoadedTensor;
        assert.ok(maxAbs(patch.dataSync(), g1.data) < 1e-4);
        assert.ok(maxAbs(pos.dataSync(), g2.data) < 1e-6);
        tf.dispose([pixels, shapes, patch, pos]);
      });
    });
});

describe('NaFlex model: serialization and bad input', () => {
  const config = parseConfig({
    model_type: 'siglip2',
    vision_config: {
      hidden_size: 8,
      intermediate_size: 16,
      num_hidden_layers: 1,
      num_attention_heads: 2,
      num_patches: 4,
      patch_size: 2,
    },
    text_config: { hidden_size: 8, num_attention_heads: 2, num_hidden_layers: 1 },
  });
  const vc = config.visionConfig;
  assert.ok(vc);
  let vision: SiglipVisionModel;
  before(() => {
    vision = SiglipVisionModel.build(vc, { weightInit: 'random' });
  });
  after(() => vision.dispose());

  function feeds(
    shapes: number[][],
    maxPatches: number,
    opts: { mask?: tf.Tensor; patchDim?: number; shapesBatch?: number } = {},
  ) {
    const b = shapes.length;
    const maskRows = shapes.map(([h, w]) =>
      Array.from({ length: maxPatches }, (_, j) => (j < h * w ? 1 : 0)),
    );
    return {
      pixelValues: tf.randomNormal([b, maxPatches, opts.patchDim ?? 12]),
      pixelAttentionMask: opts.mask ?? tf.tensor2d(maskRows, [b, maxPatches]),
      spatialShapes: tf.tensor2d(shapes.slice(0, opts.shapesBatch ?? b), undefined, 'int32'),
    };
  }

  function expectError(
    inputs: ReturnType<typeof feeds> | Parameters<SiglipVisionModel['predict']>[0],
    re: RegExp,
  ) {
    const before = tf.memory().numTensors;
    assert.throws(() => vision.predict(inputs), re);
    assert.equal(tf.memory().numTensors, before, 'tensors leaked on error');
    tf.dispose(Object.values(inputs) as tf.Tensor[]);
  }

  it('Siglip2VisionEmbeddings getConfig/fromConfig round-trips', () => {
    const layer = vision.model.getLayer('embeddings');
    assert.ok(layer instanceof Siglip2VisionEmbeddings);
    const cfg = layer.getConfig();
    assert.equal(cfg.numPatches, 4);
    assert.equal(cfg.patchSize, 2);
    const copy = Siglip2VisionEmbeddings.fromConfig(Siglip2VisionEmbeddings, cfg);
    assert.ok(copy instanceof Siglip2VisionEmbeddings);
    assert.deepEqual(copy.getConfig(), cfg);
  });

  it('a model of the embeddings layer survives toJSON / modelFromJSON with the same outputs', async () => {
    const layer = vision.model.getLayer('embeddings') as Siglip2VisionEmbeddings;
    const pixels = tf.input({ shape: [null, 12], name: 'pixel_values' });
    const shapesIn = tf.input({ shape: [2], dtype: 'int32', name: 'spatial_shapes' });
    const emb = new Siglip2VisionEmbeddings({
      name: 'embeddings',
      hiddenSize: layer.hiddenSize,
      patchSize: layer.patchSize,
      numPatches: layer.numPatches,
      numChannels: layer.numChannels,
    });
    const small = tf.model({
      inputs: [pixels, shapesIn],
      outputs: emb.apply([pixels, shapesIn]) as tf.SymbolicTensor,
    });
    small.setWeights(layer.getWeights());
    const json = small.toJSON(undefined, false) as tf.io.ModelJSON['modelTopology'];
    const rebuilt = await tf.models.modelFromJSON({ modelTopology: json });
    rebuilt.setWeights(small.getWeights());
    assert.ok(rebuilt.getLayer('embeddings') instanceof Siglip2VisionEmbeddings);
    const inputs = feeds(
      [
        [1, 3],
        [2, 2],
        [3, 1],
      ],
      5,
    );
    const a = small.predict([inputs.pixelValues, inputs.spatialShapes]) as tf.Tensor;
    const b = rebuilt.predict([inputs.pixelValues, inputs.spatialShapes]) as tf.Tensor;
    assert.deepEqual(b.shape, [3, 5, 8]);
    assert.equal(maxAbs(a.dataSync(), b.dataSync()), 0);
    tf.dispose([a, b, ...Object.values(inputs)]);
    small.dispose();
    rebuilt.dispose();
  });

  it('the whole tower survives toJSON / modelFromJSON with the same outputs', async () => {
    const json = vision.model.toJSON(undefined, false) as tf.io.ModelJSON['modelTopology'];
    const rebuilt = await tf.models.modelFromJSON({ modelTopology: json });
    rebuilt.setWeights(vision.model.getWeights());
    const copy = new SiglipVisionModel(vc, rebuilt);
    const inputs = feeds(
      [
        [1, 3],
        [2, 2],
        [3, 1],
      ],
      5,
    );
    const a = vision.predict(inputs);
    const b = copy.predict(inputs);
    assert.equal(maxAbs(a.lastHiddenState.dataSync(), b.lastHiddenState.dataSync()), 0);
    assert.equal(
      maxAbs((a.poolerOutput as tf.Tensor).dataSync(), (b.poolerOutput as tf.Tensor).dataSync()),
      0,
    );
    disposeTowerOutputs(a);
    disposeTowerOutputs(b);
    tf.dispose(Object.values(inputs));
    copy.dispose();
  });

  it('accepts float spatial shapes with integer values and a bool mask', () => {
    const base = feeds([[2, 3]], 8);
    const mask = base.pixelAttentionMask.cast('bool');
    const shapes = base.spatialShapes.toFloat();
    const out = vision.predict({
      pixelValues: base.pixelValues,
      pixelAttentionMask: mask,
      spatialShapes: shapes,
    });
    assert.deepEqual(out.lastHiddenState.shape, [1, 8, 8]);
    disposeTowerOutputs(out);
    tf.dispose([...Object.values(base), mask, shapes]);
  });

  it('names the argument on bad input', () => {
    expectError(
      feeds([[3, 3]], 8),
      /spatialShapes\[0\] = \(3, 3\) needs 9 patches, more than the 8/,
    );
    expectError(feeds([[0, 3]], 8), /spatialShapes\[0\] = \(0, 3\) must be two positive integers/);
    expectError(
      feeds([[2, 2]], 8, { mask: tf.tensor2d([[1, 1, 1, 0, 0, 0, 0, 0]]) }),
      /pixelAttentionMask\[0\] must be 1 for the first h\*w = 2\*2 = 4 patches/,
    );
    expectError(
      feeds([[2, 2]], 8, { mask: tf.ones([1, 7]) }),
      /pixelAttentionMask must have shape \[1, 8\]/,
    );
    expectError(
      feeds(
        [
          [2, 2],
          [1, 1],
        ],
        8,
        { shapesBatch: 1 },
      ),
      /spatialShapes must have shape \[2, 2\]/,
    );
    expectError(
      feeds([[2, 2]], 8, { patchDim: 10 }),
      /pixelValues must have shape \[batch, maxPatches, 12\]/,
    );
    const ok = feeds([[2, 2]], 8);
    expectError(
      { pixelValues: ok.pixelValues, spatialShapes: ok.spatialShapes },
      /pixelAttentionMask is required/,
    );
    expectError(
      { pixelValues: ok.pixelValues, pixelAttentionMask: ok.pixelAttentionMask },
      /spatialShapes is required/,
    );
    tf.dispose(Object.values(ok));
    expectError(
      { ...feeds([[2, 2]], 8), spatialShapes: tf.tensor2d([[1.5, 2]]) },
      /spatialShapes\[0\] = \(1.5, 2\) must be two positive integers/,
    );
  });
});
