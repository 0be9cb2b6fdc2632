import * as tf from '@tensorflow/tfjs';
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSafetensors } from '../../src/io/safetensors.js';
import { loadHfCheckpoint } from '../../src/model/load_hf.js';
import type { SiglipModel } from '../../src/model/siglip_model.js';
import { captionFolderDataset, readCaptions } from '../../src/train/data.js';
import { recallAtK } from '../../src/train/evaluate.js';
import { trainableParams } from '../../src/train/freeze.js';
import { lossAndGrads } from '../../src/train/grads.js';
import { AdamW, clipByGlobalNorm, warmupCosine } from '../../src/train/optimizer.js';
import { modelParams, paramKey, toHfTensors } from '../../src/train/params.js';
import { Trainer } from '../../src/train/trainer.js';
import { fixture } from '../helpers/fixtures.js';
import { lossGradFixtureBatch } from '../helpers/loss_grad_batch.js';

describe('train: optimizer, schedule, clipping', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('warmupCosine: linear warm-up then cosine to the floor', () => {
    const lr = warmupCosine({ peak: 1e-3, warmupSteps: 4, totalSteps: 14, min: 1e-5 });
    assert.ok(Math.abs(lr(0) - 2.5e-4) < 1e-12);
    assert.ok(Math.abs(lr(3) - 1e-3) < 1e-12);
    assert.ok(Math.abs(lr(4) - 1e-3) < 1e-12);
    assert.ok(Math.abs(lr(9) - (1e-5 + (1e-3 - 1e-5) * 0.5)) < 1e-12);
    assert.ok(Math.abs(lr(14) - 1e-5) < 1e-12);
    assert.ok(Math.abs(lr(100) - 1e-5) < 1e-12);
    assert.throws(() => warmupCosine({ peak: 1, warmupSteps: 5, totalSteps: 5 }), /totalSteps/);
  });

  it('AdamW follows torch.optim.AdamW (decoupled decay) over 3 steps', () => {
    // Scalar re-derivation of PyTorch's AdamW update, independent of the implementation under test.
    const lr = 0.1;
    const wd = 0.5;
    const [b1, b2, eps] = [0.9, 0.999, 1e-8];
    const w0 = [1.5, -2, 0.25, 3];
    const gs = [
      [0.1, -0.2, 0.3, 0],
      [-0.5, 0.1, 0.2, 1],
      [0.05, 0.05, -0.4, 2],
    ];
    const ref = [...w0];
    const m = [0, 0, 0, 0];
    const v = [0, 0, 0, 0];
    for (let t = 1; t <= 3; t++) {
      for (let i = 0; i < 4; i++) {
        const g = gs[t - 1][i];
        ref[i] *= 1 - lr * wd;
        m[i] = b1 * m[i] + (1 - b1) * g;
        v[i] = b2 * v[i] + (1 - b2) * g * g;
        const mh = m[i] / (1 - b1 ** t);
        const vh = v[i] / (1 - b2 ** t);
        ref[i] -= (lr * mh) / (Math.sqrt(vh) + eps);
      }
    }
    const variable = new tf.LayerVariable(tf.tensor2d(w0, [2, 2]), 'float32', 'w');
    const p = { tower: 'vision' as const, name: 'w', variable };
    const opt = new AdamW({ learningRate: lr, weightDecay: wd });
    for (const g of gs) {
      const grad = tf.tensor2d(g, [2, 2]);
      opt.applyGradients([p], new Map([[paramKey(p), grad]]));
      grad.dispose();
    }
    const got = variable.read().dataSync();
    ref.forEach((r, i) => assert.ok(Math.abs(got[i] - r) < 1e-6, `${got[i]} vs ${r}`));
    assert.equal(opt.step, 3);
    opt.dispose();
    variable.dispose();
  });

  it('clipByGlobalNorm scales to the max norm, and leaves smaller gradients as they are', async () => {
    const g = new Map([
      ['a', tf.tensor1d([3, 0])],
      ['b', tf.tensor1d([4])],
    ]);
    const { grads, norm } = await clipByGlobalNorm(g, 1);
    assert.ok(Math.abs(norm - 5) < 1e-6);
    const a = grads.get('a')?.dataSync() ?? [];
    assert.ok(Math.abs(a[0] - 0.6) < 1e-6);
    const loose = await clipByGlobalNorm(g, 10);
    assert.deepEqual(Array.from(loose.grads.get('b')?.dataSync() ?? []), [4]);
    assert.ok(Math.abs(loose.norm - 5) < 1e-6);
    await assert.rejects(() => clipByGlobalNorm(g, 0), /maxNorm must be > 0/);
    tf.dispose([...g.values(), ...grads.values(), ...loose.grads.values()]);
  });

  it('recallAtK counts partners ranked within k', () => {
    // rows: texts, columns: images
    const s = [
      [0.9, 0.1, 0.2],
      [0.8, 0.7, 0.1],
      [0.1, 0.95, 0.3],
    ];
    const r = recallAtK(s, [1, 2]);
    // text->image: t0 rank 0, t1 rank 1, t2 rank 1
    assert.deepEqual(r.textToImage, { 1: 1 / 3, 2: 1 });
    // image->text: i0 (col 0: .9 .8 .1) rank 0; i1 (.1 .7 .95) rank 1; i2 (.2 .1 .3) rank 0
    assert.deepEqual(r.imageToText, { 1: 2 / 3, 2: 1 });
    assert.throws(() => recallAtK([[1, 2]]), /square/);
  });
});

describe('train: Trainer on siglip_tiny', () => {
  let model: SiglipModel;
  before(async () => {
    await tf.setBackend('cpu');
  });
  beforeEach(async () => {
    model = await loadHfCheckpoint(fixture('siglip_tiny_loss_grad'), { onUnused: () => undefined });
  });
  afterEach(() => model.dispose());

  it('the first step is Adam on the reference gradient (update = -lr * sign(g))', async () => {
    const batch = await lossGradFixtureBatch();
    const expected = await readSafetensors(
      join(fixture('siglip_tiny_loss_grad'), 'outputs.safetensors'),
    );
    const lr = 1e-3;
    const trainer = new Trainer(model, { learningRate: lr, weightDecay: 0, epsilon: 1e-12 });
    const before = new Map(modelParams(model).map((p) => [paramKey(p), p.variable.read().clone()]));
    const r = await trainer.step(batch);
    const refLoss = expected.get('loss')?.data[0] ?? NaN;
    assert.ok(Math.abs(r.loss - refLoss) < 1e-5, `${r.loss} vs ${refLoss}`);
    const deltas = new Map(
      modelParams(model).map((p) => [
        paramKey(p),
        p.variable.read().sub(before.get(paramKey(p)) as tf.Tensor),
      ]),
    );
    const hf = toHfTensors(model, deltas);
    let checked = 0;
    for (const [name, d] of hf) {
      const g = expected.get(`grad.${name}`);
      assert.ok(g, name);
      const dd = d.dataSync();
      let max = 0;
      for (const x of g.data) max = Math.max(max, Math.abs(x));
      for (let i = 0; i < dd.length; i++) {
        if (Math.abs(g.data[i]) < Math.max(1e-2 * max, 1e-6)) continue; // the sign of tiny gradients is round-off
        assert.ok(Math.abs(dd[i] + lr * Math.sign(g.data[i])) < 1e-6, `${name}[${i}]: ${dd[i]}`);
        checked++;
      }
    }
    assert.ok(checked > 10000);
    tf.dispose([
      ...before.values(),
      ...deltas.values(),
      ...hf.values(),
      batch.pixelValues,
      batch.inputIds,
    ]);
    trainer.dispose();
  });

  it('leaks no tensors per step, lowers the loss, and keeps frozen weights fixed', async () => {
    const batch = await lossGradFixtureBatch();
    const trainer = new Trainer(model, {
      learningRate: 1e-3,
      maxGradNorm: 1,
      freeze: { towers: ['text'], layers: [{ tower: 'vision', from: 0, to: 1 }] },
    });
    const trained = new Set(trainer.params.map(paramKey));
    const frozen = modelParams(model).filter((p) => !trained.has(paramKey(p)));
    assert.ok(
      frozen.some((p) => p.name === 'encoder/layers.0/mlp/fc1/kernel' && p.tower === 'vision'),
    );
    assert.ok(!trainer.params.some((p) => p.tower === 'text'));
    const snapshot = frozen.map((p) => p.variable.read().dataSync().slice());
    const losses: number[] = [];
    let count = -1;
    for (let i = 0; i < 4; i++) {
      losses.push((await trainer.step(batch)).loss);
      if (i === 0)
        count = tf.memory().numTensors; // moments are created by the first step
      else assert.equal(tf.memory().numTensors, count, `tensors after step ${i + 1}`);
    }
    assert.ok(losses[3] < losses[0], `loss ${losses.join(' ')}`);
    frozen.forEach((p, i) => assert.deepEqual(p.variable.read().dataSync(), snapshot[i], p.name));
    tf.dispose([batch.pixelValues, batch.inputIds]);
    trainer.dispose();
  });

  it('gradient accumulation over two copies of a batch equals one step on it', async () => {
    const batch = await lossGradFixtureBatch();
    const other = await loadHfCheckpoint(fixture('siglip_tiny_loss_grad'), {
      onUnused: () => undefined,
    });
    const a = new Trainer(model, { learningRate: 1e-3, accumulationSteps: 2 });
    const b = new Trainer(other, { learningRate: 1e-3 });
    const ra = await a.step([batch, batch]);
    const rb = await b.step(batch);
    assert.ok(Math.abs(ra.loss - rb.loss) < 1e-6);
    assert.ok(Math.abs(ra.gradNorm - rb.gradNorm) < 1e-5 * rb.gradNorm);
    const pa = modelParams(model);
    const pb = modelParams(other);
    pa.forEach((p, i) => {
      const d = tf.tidy(
        () => p.variable.read().sub(pb[i].variable.read()).abs().max().dataSync()[0],
      );
      assert.ok(d < 1e-6, p.name);
    });
    a.dispose();
    b.dispose();
    other.dispose();
    tf.dispose([batch.pixelValues, batch.inputIds]);
  });

  it('fit runs over arrays and a captions folder, and evaluates recall', async () => {
    const batch = await lossGradFixtureBatch();
    const trainer = new Trainer(model, { learningRate: 1e-3, totalSteps: 2, warmupSteps: 1 });
    const h = await trainer.fit(batch, {
      batchSize: 3,
      epochs: 2,
      evalData: batch,
      progress: false,
    });
    assert.equal(h.steps.length, 2);
    assert.equal(h.evals.length, 2);
    assert.equal(h.evals[1].result.pairs, 3);
    assert.ok(h.steps[1].learningRate < h.steps[0].learningRate + 1e-12);
    // captions folder: CSV with a quoted comma; images stored as raw float32 files
    const dir = mkdtempSync(join(tmpdir(), 'captions-'));
    const px = batch.pixelValues.dataSync();
    const per = px.length / 3;
    for (let i = 0; i < 3; i++) {
      writeFileSync(join(dir, `img${i}.f32`), Buffer.from(px.slice(i * per, (i + 1) * per).buffer));
    }
    writeFileSync(
      join(dir, 'captions.csv'),
      'file,caption\nimg0.f32,"a cat, sitting"\nimg1.f32,a rocket\nimg2.f32,coffee\n',
    );
    writeFileSync(
      join(dir, 'captions.jsonl'),
      '{"file":"img0.f32","caption":"a cat, sitting"}\n{"file":"img1.f32","caption":"x"}\n',
    );
    const csv = await readCaptions(join(dir, 'captions.csv'));
    assert.deepEqual(csv[0], { file: join(dir, 'img0.f32'), caption: 'a cat, sitting' });
    assert.equal((await readCaptions(join(dir, 'captions.jsonl'))).length, 2);
    const ids = batch.inputIds.arraySync() as number[][];
    const { dataset } = await captionFolderDataset(join(dir, 'captions.csv'), {
      batchSize: 3,
      loadImage: async (f) => {
        const { readFile } = await import('node:fs/promises');
        const b = await readFile(f);
        return tf.tensor(new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4), [3, 64, 64]);
      },
      tokenize: (caps) =>
        tf.tensor2d(
          caps.map((_, i) => ids[i]),
          undefined,
          'int32',
        ),
    });
    const before = tf.memory().numTensors;
    const r = await trainer.evaluate(dataset, 3);
    const direct = await trainer.evaluate(batch, 3);
    assert.ok(Math.abs(r.loss - direct.loss) < 1e-6);
    assert.equal(tf.memory().numTensors, before);
    trainer.dispose();
    tf.dispose([batch.pixelValues, batch.inputIds]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('lossAndGrads covers exactly the chosen parameters', async () => {
    const batch = await lossGradFixtureBatch();
    const params = trainableParams(model, { towers: ['vision', 'scores'] });
    const { loss, grads } = await lossAndGrads(model, batch, params);
    assert.equal(grads.size, params.length);
    assert.ok([...grads.keys()].every((k) => k.startsWith('text:')));
    tf.dispose([loss, ...grads.values(), batch.pixelValues, batch.inputIds]);
    assert.throws(
      () => trainableParams(model, { towers: ['vision', 'text', 'scores'] }),
      /nothing to train/,
    );
  });
});
