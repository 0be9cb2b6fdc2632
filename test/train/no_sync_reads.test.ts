/**
 * The training path reads nothing synchronously (dataSync / arraySync / bufferSync): TF.js's webgpu backend cannot
 * do that in Node and it stalls a GPU anywhere. Each training entry point runs here with the synchronous reads of
 * every tensor made to throw, on cpu and wasm (fast, no GPU needed), so a synchronous read reintroduced anywhere on
 * the path (token-id checks, the loss, gradient norms and clipping, accumulation, LoRA, gradient checkpointing,
 * NaFlex grids and masks, evaluation, fit) fails this test.
 */
import * as tf from '@tensorflow/tfjs';
import { strict as assert } from 'node:assert';
import { loadHfCheckpoint } from '../../src/model/load_hf.js';
import '../../src/model/naflex_vision_model.js';
import type { SiglipModel } from '../../src/model/siglip_model.js';
import { evaluatePairs } from '../../src/train/evaluate.js';
import { type PairBatch, pairLoss, prepareBatch, trainForward } from '../../src/train/forward.js';
import { lossAndGrads } from '../../src/train/grads.js';
import { LoraAdapters } from '../../src/train/lora.js';
import { setGradientCheckpointing } from '../../src/train/recompute.js';
import { Trainer } from '../../src/train/trainer.js';
import { useTestBackend } from '../helpers/backend.js';
import { fixture } from '../helpers/fixtures.js';
import { lossGradFixtureBatch } from '../helpers/loss_grad_batch.js';
import { naflexBatch } from '../helpers/naflex_batch.js';

const SYNC_READS = ['dataSync', 'arraySync', 'bufferSync'] as const;

/** Makes every synchronous read of a tensor throw until the returned function is called. */
function forbidSyncReads(): () => void {
  const proto = tf.Tensor.prototype as unknown as Record<string, unknown>;
  const saved = SYNC_READS.map((name) => [name, proto[name]] as const);
  for (const name of SYNC_READS) {
    proto[name] = function () {
      throw new Error(`synchronous read (${name}) on the training path`);
    };
  }
  return () => {
    for (const [name, fn] of saved) proto[name] = fn;
  };
}

async function withoutSyncReads<T>(fn: () => Promise<T>): Promise<T> {
  const restore = forbidSyncReads();
  try {
    return await fn();
  } finally {
    restore();
  }
}

function disposeBatch(b: PairBatch): void {
  tf.dispose(Object.values(b).filter((t): t is tf.Tensor => t instanceof tf.Tensor));
}

/** A copy whose values no host read has seen yet (as for a batch built by ops on the device). */
function deviceCopy(b: PairBatch): PairBatch {
  const out: PairBatch = {
    pixelValues: b.pixelValues.add(tf.scalar(0)),
    inputIds: b.inputIds.add(tf.scalar(0, 'int32')),
  };
  if (b.pixelAttentionMask)
    out.pixelAttentionMask = b.pixelAttentionMask.add(tf.scalar(0, 'int32'));
  if (b.spatialShapes) out.spatialShapes = b.spatialShapes.toFloat(); // float grids: the converted path too
  return out;
}

describe('train: no synchronous reads on the training path', function () {
  this.timeout(300000);
  let model: SiglipModel;
  let naflex: SiglipModel;
  let batch: PairBatch;

  before(async () => {
    await useTestBackend('cpu');
    model = await loadHfCheckpoint(fixture('siglip_tiny_loss_grad'), { onUnused: () => undefined });
    naflex = await loadHfCheckpoint(fixture('siglip2_naflex_tiny'), { onUnused: () => undefined });
    batch = await lossGradFixtureBatch();
  });

  after(async () => {
    disposeBatch(batch);
    model.dispose();
    naflex.dispose();
    await useTestBackend('cpu');
  });

  it('the guard catches a synchronous read, and an unprepared batch fails saying what to call', async () => {
    const b = deviceCopy(batch);
    try {
      await withoutSyncReads(async () => {
        const loss = tf.tidy(() => tf.scalar(1).add(1));
        assert.throws(() => loss.dataSync(), /synchronous read \(dataSync\)/);
        assert.throws(() => loss.arraySync(), /synchronous read \(arraySync\)/);
        loss.dispose();
        assert.throws(
          () => pairLoss(model, b),
          /inputIds: reading it synchronously failed.*prepareBatch/,
        );
        await prepareBatch(model, b);
        pairLoss(model, b).dispose();
      });
    } finally {
      disposeBatch(b);
    }
  });

  it('a bad token id is still caught, with its position, without a synchronous read', async () => {
    const bad = tf.tidy(() =>
      batch.inputIds.add(tf.oneHot([5], 16).mul(5000).toInt().reshape([1, 16])),
    );
    try {
      await withoutSyncReads(async () => {
        await assert.rejects(
          () => lossAndGrads(model, { ...batch, inputIds: bad }),
          /inputIds\[0\]\[5\] = \d+ is outside the vocabulary \[0, 1000\)/,
        );
      });
    } finally {
      bad.dispose();
    }
  });

  for (const backend of ['cpu', 'wasm'] as const) {
    it(`Trainer.step: clipping, accumulation, checkpointing, LoRA (${backend})`, async () => {
      await useTestBackend(backend);
      const b = deviceCopy(batch);
      const lora = LoraAdapters.attach(model, { rank: 2, alpha: 4 });
      const trainers = [
        new Trainer(model, { learningRate: 1e-3, maxGradNorm: 0.5, accumulationSteps: 2 }),
        new Trainer(model, { learningRate: 1e-3, gradientCheckpointing: true }),
        new Trainer(model, { learningRate: 1e-3, params: lora.params, maxGradNorm: 1 }),
      ];
      try {
        await withoutSyncReads(async () => {
          const first = await trainers[0].step([b, b]);
          assert.ok(Number.isFinite(first.loss) && first.gradNorm > 0);
          const second = await trainers[1].step(b);
          assert.ok(second.loss < first.loss, `${second.loss} < ${first.loss}`);
          assert.ok(Number.isFinite((await trainers[2].step(b)).loss));
        });
      } finally {
        trainers.forEach((t) => t.dispose());
        setGradientCheckpointing(model, false);
        lora.remove();
        disposeBatch(b);
        await useTestBackend('cpu');
      }
    });
  }

  it('fit with evaluation (loss and recall of held-out pairs)', async () => {
    const data = deviceCopy(batch);
    const trainer = new Trainer(model, { learningRate: 1e-3, maxGradNorm: 1 });
    try {
      const history = await withoutSyncReads(() =>
        trainer.fit(data, { batchSize: 3, epochs: 2, evalData: data, progress: false }),
      );
      assert.equal(history.steps.length, 2);
      assert.equal(history.evals.length, 2);
      assert.ok(history.evals[1].result.loss < history.evals[0].result.loss);
      assert.equal(history.evals[0].result.pairs, 3);
      const direct = await withoutSyncReads(() => evaluatePairs(model, data, { batchSize: 2 }));
      assert.ok(Number.isFinite(direct.recall.imageToText[1]));
    } finally {
      trainer.dispose();
      disposeBatch(data);
    }
  });

  it('NaFlex: masks and (h, w) grids read on the host, with and without checkpointing', async () => {
    const given = await naflexBatch();
    const b = deviceCopy(given);
    disposeBatch(given);
    const trainer = new Trainer(naflex, { learningRate: 1e-4, maxGradNorm: 1 });
    try {
      await withoutSyncReads(async () => {
        const r1 = await trainer.step(b);
        const checkpointed = new Trainer(naflex, {
          learningRate: 1e-4,
          gradientCheckpointing: true,
        });
        const r2 = await checkpointed.step(b);
        checkpointed.dispose();
        setGradientCheckpointing(naflex, false);
        assert.ok(r2.loss < r1.loss, `${r2.loss} < ${r1.loss}`);
        const out = tf.tidy(() => trainForward(naflex, b, { training: false }).logitsPerText);
        assert.deepEqual(out.shape, [3, 3]);
        out.dispose();
      });
    } finally {
      trainer.dispose();
      disposeBatch(b);
    }
  });
});
