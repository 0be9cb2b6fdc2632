import * as tf from '@tensorflow/tfjs';
import { strict as assert } from 'node:assert';
import { loadHfCheckpoint } from '../../src/model/load_hf.js';
import '../../src/model/naflex_vision_model.js';
import type { SiglipModel } from '../../src/model/siglip_model.js';
import type { PairBatch } from '../../src/train/forward.js';
import { lossAndGrads } from '../../src/train/grads.js';
import { type Param, modelParams, paramKey } from '../../src/train/params.js';
import { setGradientCheckpointing } from '../../src/train/recompute.js';
import { centralDifferenceMismatches } from '../helpers/central_difference.js';
import { fixture } from '../helpers/fixtures.js';
import { naflexBatch } from '../helpers/naflex_batch.js';

// There is no loss/gradient fixture for NaFlex, so its gradients are checked against the loss itself: central
// differences along a random direction, for the parameters only the NaFlex tower has (the resized position
// table, the linear patch embedding) and for the masked attention of the encoder and the pooling head.

const CHECKED = [
  'embeddings/position_embedding/embeddings',
  'embeddings/patch_embedding/kernel',
  'encoder/layers.0/self_attn/q_proj/kernel',
  'encoder/layers.1/mlp/fc1/kernel',
  'head/probe',
  'head/attention/in_proj/kernel',
];

describe('train: NaFlex gradients (central differences, masked patches)', () => {
  let model: SiglipModel;
  let batch: PairBatch;
  let params: Param[];

  before(async () => {
    await tf.setBackend('cpu');
    model = await loadHfCheckpoint(fixture('siglip2_naflex_tiny'), { onUnused: () => undefined });
    batch = await naflexBatch();
    const all = modelParams(model).filter((p) => p.tower === 'vision');
    params = CHECKED.map((name) => {
      const p = all.find((q) => q.name === name);
      assert.ok(p, name);
      return p;
    });
  });

  after(() => {
    tf.dispose(Object.values(batch).filter((t): t is tf.Tensor => t instanceof tf.Tensor));
    model.dispose();
  });

  it('the fixture batch has padded patches (the masks are exercised)', () => {
    const m = batch.pixelAttentionMask;
    assert.ok(m);
    assert.ok(tf.tidy(() => m.min().dataSync()[0]) === 0);
  });

  for (const checkpointing of [false, true]) {
    it(`directional derivatives equal central differences of the loss (checkpointing ${checkpointing})`, async () => {
      setGradientCheckpointing(model, checkpointing);
      // measured: agreement to about 1e-5 relative (1.7e-6 absolute at worst)
      const rows = await centralDifferenceMismatches(model, batch, params);
      setGradientCheckpointing(model, false);
      assert.deepEqual(rows, []);
    });
  }

  it('padded patches influence neither the loss nor any gradient', async () => {
    const mask = batch.pixelAttentionMask;
    assert.ok(mask);
    const noisy: PairBatch = {
      ...batch,
      pixelValues: tf.tidy(() => {
        const keep = mask.toFloat().expandDims(-1);
        const noise = tf.randomNormal(batch.pixelValues.shape, 0, 5, 'float32', 7);
        return batch.pixelValues.mul(keep).add(noise.mul(tf.sub(1, keep)));
      }),
    };
    const a = await lossAndGrads(model, batch, params);
    const b = await lossAndGrads(model, noisy, params);
    assert.equal(a.loss.dataSync()[0], b.loss.dataSync()[0]);
    for (const p of params) {
      const ga = a.grads.get(paramKey(p));
      const gb = b.grads.get(paramKey(p));
      assert.ok(ga && gb);
      assert.deepEqual(Array.from(gb.dataSync()), Array.from(ga.dataSync()), p.name);
    }
    tf.dispose([noisy.pixelValues, a.loss, b.loss, ...a.grads.values(), ...b.grads.values()]);
  });
});
