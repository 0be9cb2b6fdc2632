import * as tf from '@tensorflow/tfjs';
import { strict as assert } from 'node:assert';
import { copyFileSync, existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkModelFixture } from '../../src/check/index.js';
import { SafetensorsFile, readSafetensors } from '../../src/io/safetensors.js';
import { parseConfig } from '../../src/model/config.js';
import { loadHfCheckpoint } from '../../src/model/load_hf.js';
import type { SiglipModel } from '../../src/model/siglip_model.js';
import { loadTrainCheckpoint, saveTrainCheckpoint } from '../../src/train/checkpoint.js';
import { configToHfJson, exportHf } from '../../src/train/export_hf.js';
import { trainForward } from '../../src/train/forward.js';
import { LoraAdapters } from '../../src/train/lora.js';
import { modelParams } from '../../src/train/params.js';
import { Trainer } from '../../src/train/trainer.js';
import { fixture } from '../helpers/fixtures.js';
import { lossGradFixtureBatch } from '../helpers/loss_grad_batch.js';

function sameBits(a: Float32Array, b: Float32Array): boolean {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

describe('train: export to Hugging Face, LoRA, checkpoints', () => {
  let model: SiglipModel;
  before(async () => {
    await tf.setBackend('cpu');
  });
  beforeEach(async () => {
    model = await loadHfCheckpoint(fixture('siglip_tiny'), { onUnused: () => undefined });
  });
  afterEach(() => model.dispose());

  it('HF -> TF.js -> HF is bit-exact, and the exported folder passes the siglip_tiny check', async () => {
    const src = fixture('siglip_tiny');
    const out = mkdtempSync(join(tmpdir(), 'export-'));
    await exportHf(model, out, { sourceDir: src });
    const orig = await SafetensorsFile.open(join(src, 'model.safetensors'));
    const mine = await SafetensorsFile.open(join(out, 'model.safetensors'));
    try {
      assert.deepEqual([...mine.names].sort(), [...orig.names].sort());
      for (const name of orig.names) {
        const a = orig.info(name);
        const b = mine.info(name);
        assert.equal(b.dtype, 'F32', name);
        assert.deepEqual(b.shape, a.shape, name);
        const x = await orig.read(name);
        const y = await mine.read(name);
        assert.ok(sameBits(x.data as Float32Array, y.data as Float32Array), `${name} differs`);
      }
    } finally {
      await orig.close();
      await mine.close();
    }
    assert.deepEqual(
      readFileSync(join(out, 'config.json')),
      readFileSync(join(src, 'config.json')),
    );
    for (const f of ['cases.json', 'inputs.safetensors', 'outputs.safetensors']) {
      copyFileSync(join(src, f), join(out, f));
    }
    const rows = await checkModelFixture(out);
    assert.ok(
      rows.length > 0 && rows.every((r) => r.ok),
      rows
        .filter((r) => !r.ok)
        .map((r) => r.name)
        .join(),
    );
  });

  it('a serialised config parses back to the same configuration; sharded export reloads', async () => {
    const json = configToHfJson(model.config);
    assert.deepEqual(parseConfig(json, 'serialised'), model.config);
    const out = mkdtempSync(join(tmpdir(), 'export-sharded-'));
    const r = await exportHf(model, out, { maxShardBytes: 200_000 });
    assert.ok(r.files.length > 3 && existsSync(join(out, 'model.safetensors.index.json')));
    const back = await loadHfCheckpoint(out);
    const a = modelParams(model);
    const b = modelParams(back);
    a.forEach((p, i) =>
      assert.ok(
        sameBits(
          p.variable.read().dataSync() as Float32Array,
          b[i].variable.read().dataSync() as Float32Array,
        ),
      ),
    );
    back.dispose();
  });

  it('LoRA: starts equal to the base (reference logits), trains only adapters, merge keeps outputs', async () => {
    const expected = await readSafetensors(
      join(fixture('siglip_tiny_loss_grad'), 'outputs.safetensors'),
    );
    const batch = await lossGradFixtureBatch();
    const lora = LoraAdapters.attach(model, { rank: 4, alpha: 8, seed: 1 });
    assert.equal(lora.entries.length, 2 * 2 * 6); // 2 towers x 2 layers x 6 projections
    const logits0 = tf.tidy(() => trainForward(model, batch, { training: false }).logitsPerText);
    const ref = expected.get('logits_per_text');
    assert.ok(ref);
    const d0 = logits0.dataSync();
    ref.data.forEach((v, i) => assert.ok(Math.abs(d0[i] - v) < 1e-4, `logit ${i}`));
    const base = modelParams(model).map((p) => p.variable.read().dataSync().slice());
    const trainer = new Trainer(model, { params: lora.params, learningRate: 1e-2 });
    const losses: number[] = [];
    for (let i = 0; i < 3; i++) losses.push((await trainer.step(batch)).loss);
    assert.ok(losses[2] < losses[0]);
    modelParams(model).forEach((p, i) =>
      assert.deepEqual(p.variable.read().dataSync(), base[i], p.name),
    );
    const unmerged = tf.tidy(() => trainForward(model, batch, { training: false }).logitsPerText);
    assert.ok(tf.tidy(() => unmerged.sub(logits0).abs().max().dataSync()[0]) > 1e-3);
    lora.merge();
    assert.ok(lora.entries.every((e) => e.layer.lora === undefined));
    const merged = tf.tidy(() => trainForward(model, batch, { training: false }).logitsPerText);
    const diff = tf.tidy(() => merged.sub(unmerged).abs().max().dataSync()[0]);
    assert.ok(diff < 1e-4, `merged vs unmerged ${diff}`);
    trainer.dispose();
    tf.dispose([logits0, unmerged, merged, batch.pixelValues, batch.inputIds]);
  });

  it('save and resume (weights, LoRA, optimizer state) continues exactly', async () => {
    const batch = await lossGradFixtureBatch();
    const lora = LoraAdapters.attach(model, { rank: 2, towers: ['vision'], seed: 3 });
    const params = [...lora.params, ...modelParams(model).filter((p) => p.tower === 'scores')];
    const trainer = new Trainer(model, {
      params,
      learningRate: 1e-2,
      totalSteps: 10,
      warmupSteps: 2,
    });
    await trainer.step(batch);
    await trainer.step(batch);
    const dir = mkdtempSync(join(tmpdir(), 'ckpt-'));
    const info = await saveTrainCheckpoint(dir, trainer, lora);
    assert.equal(info.step, 2);
    const third = await trainer.step(batch);
    const after = params.map((p) => p.variable.read().dataSync().slice());

    const fresh = await loadHfCheckpoint(fixture('siglip_tiny'), { onUnused: () => undefined });
    const lora2 = LoraAdapters.attach(fresh, { rank: 2, towers: ['vision'], seed: 99 });
    const params2 = [...lora2.params, ...modelParams(fresh).filter((p) => p.tower === 'scores')];
    const trainer2 = new Trainer(fresh, {
      params: params2,
      learningRate: 1e-2,
      totalSteps: 10,
      warmupSteps: 2,
    });
    await loadTrainCheckpoint(dir, trainer2, lora2);
    const third2 = await trainer2.step(batch);
    assert.equal(third2.step, 3);
    assert.equal(third2.learningRate, third.learningRate);
    assert.equal(third2.loss, third.loss);
    params2.forEach((p, i) => assert.deepEqual(p.variable.read().dataSync(), after[i], p.name));
    trainer.dispose();
    trainer2.dispose();
    fresh.dispose();
    tf.dispose([batch.pixelValues, batch.inputIds]);
  });
});
