import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import {
  checkLossGradFixture,
  compareGradient,
  readCases,
  zeroParts,
} from '../../src/check/index.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { loadHfCheckpoint } from '../../src/model/load_hf.js';
import { lossAndGrads } from '../../src/train/grads.js';
import { sigmoidLoss, siglipLoss } from '../../src/train/loss.js';
import { toHfTensors } from '../../src/train/params.js';
import { fixture } from '../helpers/fixtures.js';

describe('train: sigmoid loss and gradients (siglip_tiny_loss_grad)', () => {
  const dir = () => fixture('siglip_tiny_loss_grad');

  before(async () => {
    await tf.setBackend('cpu');
  });

  it('sigmoidLoss of the reference logits_per_text is the reference loss', async () => {
    const out = await readSafetensors(join(dir(), 'outputs.safetensors'));
    const logits = out.get('logits_per_text');
    const loss = out.get('loss');
    assert.ok(logits && loss);
    const l = tf.tensor(logits.data as Float32Array, logits.shape);
    const got = sigmoidLoss(l);
    const viaCompile = siglipLoss(tf.eye(logits.shape[0]), l);
    assert.ok(Math.abs(got.dataSync()[0] - loss.data[0]) < 1e-5 * Math.abs(loss.data[0]));
    assert.equal(viaCompile.dataSync()[0], got.dataSync()[0]);
    tf.dispose([l, got, viaCompile]);
  });

  it('rejects a non-square batch without targets', () => {
    const l = tf.zeros([2, 3]);
    assert.throws(() => sigmoidLoss(l), /square \[texts, images\]/);
    l.dispose();
  });

  it('loss and every gradient match the reference on cpu and wasm', async () => {
    for (const backend of ['cpu', 'wasm']) {
      await tf.setBackend(backend);
      const rows = await checkLossGradFixture(dir());
      const bad = rows.filter((r) => !r.ok).map((r) => `${r.name} ${r.maxAbs} ${r.note}`);
      assert.deepEqual(bad, [], `${backend}: ${bad.join('\n')}`);
      // every parameter's gradient was compared (88 tensors + loss + 2 logits + forward-only loss)
      const cases = await readCases(dir());
      const grads = Object.keys(cases.outputs ?? {}).filter((k) => k.startsWith('grad.'));
      assert.equal(rows.filter((r) => r.name.startsWith('grad.')).length, grads.length);
    }
    await tf.setBackend('cpu');
  });

  it('with gradient checkpointing, the loss and every gradient still match the reference (cpu, wasm)', async () => {
    for (const backend of ['cpu', 'wasm']) {
      await tf.setBackend(backend);
      const before = tf.memory().numTensors;
      const rows = await checkLossGradFixture(dir(), { gradientCheckpointing: true });
      const bad = rows.filter((r) => !r.ok).map((r) => `${r.name} ${r.maxAbs} ${r.note}`);
      assert.deepEqual(bad, [], `${backend}: ${bad.join('\n')}`);
      assert.equal(rows.filter((r) => r.name.startsWith('grad.')).length, 88);
      assert.equal(tf.memory().numTensors, before, `${backend}: tensors leaked`);
    }
    await tf.setBackend('cpu');
  });

  it('a gradient off by 1% fails the comparison, and the zero parts are bounded absolutely', async () => {
    const cases = await readCases(dir());
    const zero = zeroParts(cases);
    assert.ok(zero.some((z) => z.range?.[0] === 48 && z.range[1] === 96));
    const model = await loadHfCheckpoint(dir(), { onUnused: () => undefined });
    const inputs = await readSafetensors(join(dir(), 'inputs.safetensors'));
    const expected = await readSafetensors(join(dir(), 'outputs.safetensors'));
    const px = inputs.get('pixel_values');
    const ids = inputs.get('input_ids');
    assert.ok(px && ids);
    const pixelValues = tf.tensor(px.data as Float32Array, px.shape);
    const inputIds = tf.tensor(ids.data as Int32Array, ids.shape, 'int32');
    const before = tf.memory().numTensors;
    const { loss, grads } = await lossAndGrads(model, { pixelValues, inputIds });
    const hf = toHfTensors(model, grads);
    const name = 'text_model.encoder.layers.1.self_attn.q_proj.weight';
    const g = hf.get(name);
    const golden = expected.get(`grad.${name}`);
    assert.ok(g && golden);
    const data = g.dataSync();
    const tol = { atol: 1e-5, rtol: 1e-3 };
    assert.ok(compareGradient(name, data, golden.data, golden.shape, g.shape, tol, [], 1e-6).ok);
    const off = data.map((v) => v * 1.01);
    assert.ok(!compareGradient(name, off, golden.data, golden.shape, g.shape, tol, [], 1e-6).ok);
    // a non-zero value where the reference says "mathematically zero" fails
    const kb = hf.get('vision_model.encoder.layers.0.self_attn.k_proj.bias');
    assert.ok(kb);
    const bumped = kb.dataSync().map((v, i) => (i === 0 ? v + 1e-4 : v));
    const z = expected.get('grad.vision_model.encoder.layers.0.self_attn.k_proj.bias');
    assert.ok(z);
    const zr = [{ output: 'vision_model.encoder.layers.0.self_attn.k_proj.bias' }];
    assert.ok(
      compareGradient(zr[0].output, kb.dataSync(), z.data, z.shape, kb.shape, tol, zr, 1e-6).ok,
    );
    assert.ok(!compareGradient(zr[0].output, bumped, z.data, z.shape, kb.shape, tol, zr, 1e-6).ok);
    tf.dispose([loss, ...grads.values(), ...hf.values()]);
    assert.equal(tf.memory().numTensors, before);
    tf.dispose([pixelValues, inputIds]);
    model.dispose();
  });
});
