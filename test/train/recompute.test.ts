import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { readSafetensors } from '../../src/io/safetensors.js';
import { loadHfCheckpoint } from '../../src/model/load_hf.js';
import type { SiglipModel } from '../../src/model/siglip_model.js';
import { type PairBatch, pairLoss } from '../../src/train/forward.js';
import { lossAndGrads } from '../../src/train/grads.js';
import { LoraAdapters } from '../../src/train/lora.js';
import { modelParams, paramKey } from '../../src/train/params.js';
import { setGradientCheckpointing } from '../../src/train/recompute.js';
import { centralDifferenceMismatches } from '../helpers/central_difference.js';
import { fixture } from '../helpers/fixtures.js';
import { lossGradFixtureBatch } from '../helpers/loss_grad_batch.js';
import { maxDiff } from '../helpers/max_diff.js';

const dir = () => fixture('siglip_tiny_loss_grad');

/** Tape nodes recorded by the forward pass of the loss (what the backward pass keeps alive). */
async function tapeLength(model: SiglipModel, batch: PairBatch): Promise<number> {
  let nodes = 0;
  const { loss, grads } = await lossAndGrads(model, batch, undefined, (m, b) => {
    const l = pairLoss(m, b, true);
    nodes = tf.engine().state.activeTape.length;
    return l;
  });
  tf.dispose([loss, ...grads.values()]);
  return nodes;
}

describe('train: gradient checkpointing (recomputed encoder layers)', () => {
  after(async () => {
    await tf.setBackend('cpu');
  });

  it('LoRA gradients follow the reference weight gradients (dB = scale A^T dW, dA = 0) with and without it, cpu and wasm', async () => {
    const expected = await readSafetensors(join(dir(), 'outputs.safetensors'));
    for (const backend of ['cpu', 'wasm']) {
      await tf.setBackend(backend);
      for (const checkpointing of [false, true]) {
        const model = await loadHfCheckpoint(dir(), { onUnused: () => undefined });
        setGradientCheckpointing(model, checkpointing);
        const lora = LoraAdapters.attach(model, { rank: 4, seed: 3 });
        const batch = await lossGradFixtureBatch();
        const before = tf.memory().numTensors;
        const { loss, grads } = await lossAndGrads(model, batch, lora.params);
        for (const e of lora.entries) {
          const hfName = `${e.tower}_model.${e.path.replace(/\//g, '.')}.weight`;
          const golden = expected.get(`grad.${hfName}`);
          assert.ok(golden, hfName);
          const adapter = e.layer.lora;
          assert.ok(adapter);
          const want = tf.tidy(() =>
            tf
              .matMul(
                adapter.a.read(),
                tf.tensor(golden.data as Float32Array, golden.shape).transpose(),
                true,
                false,
              )
              .mul(lora.scale),
          );
          const gotB = grads.get(paramKey({ tower: e.tower, name: `${e.path}/lora_b` }));
          const gotA = grads.get(paramKey({ tower: e.tower, name: `${e.path}/lora_a` }));
          assert.ok(gotB && gotA);
          const scale = tf.tidy(() => want.abs().max().dataSync()[0]);
          const diff = tf.tidy(() => gotB.sub(want).abs().max().dataSync()[0]);
          const tag = `${backend} checkpointing=${checkpointing} ${hfName}`;
          assert.ok(diff <= 1e-3 * scale + 1e-7, `${tag}: dB off by ${diff} (max ${scale})`);
          assert.equal(
            tf.tidy(() => gotA.abs().max().dataSync()[0]),
            0,
            `${tag}: dA`,
          );
          want.dispose();
        }
        tf.dispose([loss, ...grads.values()]);
        assert.equal(tf.memory().numTensors, before, `${backend}: tensors leaked`);
        tf.dispose([batch.pixelValues, batch.inputIds]);
        lora.remove();
        model.dispose();
      }
    }
  });

  it('LoRA with a non-zero B: A, B and the gradient through adapted layers equal central differences (cpu)', async () => {
    await tf.setBackend('cpu');
    const model = await loadHfCheckpoint(dir(), { onUnused: () => undefined });
    const lora = LoraAdapters.attach(model, { rank: 4, seed: 5 });
    for (const p of lora.params) {
      if (p.name.endsWith('lora_b')) {
        p.variable.write(tf.randomNormal(p.variable.shape as number[], 0, 0.05, 'float32', 9));
      }
    }
    const pick = (tower: string, name: string) => {
      const found = [...lora.params, ...modelParams(model)].find(
        (p) => p.tower === tower && p.name === name,
      );
      assert.ok(found, `${tower}:${name}`);
      return found;
    };
    const params = [
      pick('vision', 'encoder/layers.0/self_attn/q_proj/lora_a'),
      pick('vision', 'encoder/layers.0/self_attn/q_proj/lora_b'),
      pick('text', 'encoder/layers.1/mlp/fc1/lora_a'),
      pick('text', 'encoder/layers.1/mlp/fc2/lora_b'),
      // reaches the loss only through the adapted layers' input gradients
      pick('vision', 'embeddings/patch_embedding/kernel'),
    ];
    const batch = await lossGradFixtureBatch();
    for (const checkpointing of [false, true]) {
      setGradientCheckpointing(model, checkpointing);
      assert.deepEqual(
        await centralDifferenceMismatches(model, batch, params),
        [],
        `${checkpointing}`,
      );
    }
    tf.dispose([batch.pixelValues, batch.inputIds]);
    lora.remove();
    model.dispose();
  });

  it("recomputes a layer without fc2's product (its output is not needed there), with the same gradients", async () => {
    await tf.setBackend('cpu');
    const model = await loadHfCheckpoint(dir(), { onUnused: () => undefined });
    const batch = await lossGradFixtureBatch();
    const fc2Shapes = [model.config.visionConfig, model.config.textConfig].map((t) =>
      JSON.stringify([t?.intermediateSize, t?.hiddenSize]),
    );
    // fc2's forward product (with its bias, so _FusedMatMul; fc1's input gradient has fc2's shapes but no bias)
    const run = async () => {
      let grads = new Map<string, tf.Tensor>();
      let loss: tf.Scalar | undefined;
      const info = await tf.profile(async () => {
        ({ loss, grads } = await lossAndGrads(model, batch));
      });
      const fc2Products = info.kernels.filter(
        (k) =>
          k.name === '_FusedMatMul' &&
          fc2Shapes.includes(JSON.stringify(k.inputShapes[1]?.slice(-2))),
      ).length;
      const values = new Map([...grads].map(([key, g]) => [key, g.dataSync().slice()]));
      tf.dispose([loss, ...grads.values()]);
      return { fc2Products, values };
    };
    const plain = await run();
    setGradientCheckpointing(model, true);
    const recomputed = await run();
    // 2 layers per tower, and the vision pooling head's MLP
    assert.equal(plain.fc2Products, 5);
    assert.equal(recomputed.fc2Products, plain.fc2Products, 'fc2 products with checkpointing');
    assert.equal(recomputed.values.size, plain.values.size);
    for (const [key, want] of plain.values) {
      const got = recomputed.values.get(key);
      assert.ok(got, key);
      const { diff, scale } = maxDiff(got, want);
      assert.ok(diff <= 1e-5 * scale + 1e-7, `${key}: off by ${diff} (max ${scale})`);
    }
    tf.dispose([batch.pixelValues, batch.inputIds]);
    model.dispose();
  });

  it('keeps only the layer inputs on the tape, and is a plain forward pass outside a gradient', async () => {
    await tf.setBackend('cpu');
    const model = await loadHfCheckpoint(dir(), { onUnused: () => undefined });
    const batch = await lossGradFixtureBatch();
    const plain = await tapeLength(model, batch);
    assert.equal(setGradientCheckpointing(model, true), 2);
    const recomputed = await tapeLength(model, batch);
    assert.ok(recomputed < plain / 2, `tape nodes ${recomputed} with, ${plain} without`);
    // Inference is unchanged: the same logits, nothing recorded.
    const a = tf.tidy(() => pairLoss(model, batch, false).dataSync()[0]);
    setGradientCheckpointing(model, false);
    const b = tf.tidy(() => pairLoss(model, batch, false).dataSync()[0]);
    assert.equal(a, b);
    tf.dispose([batch.pixelValues, batch.inputIds]);
    model.dispose();
  });
});
