/**
 * Training on WebGPU in Node (Dawn; lavapipe without a GPU): the loss and every gradient of the tiny model equal the
 * reference (siglip_tiny_loss_grad) with gradient checkpointing off and on, and Trainer steps lower the loss. TF.js's
 * webgpu backend cannot read synchronously in Node, so this also proves the step reads only asynchronously. The
 * token table of the tiny model fits the binding limit: the default (device) lookup is used.
 */
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { useBackend } from '../../src/backends/index.js';
import { checkLossGradFixture, formatComparisons } from '../../src/check/index.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { setTokenTableMode } from '../../src/layers/index.js';
import { loadHfCheckpoint } from '../../src/model/load_hf.js';
import '../../src/model/naflex_vision_model.js';
import type { SiglipModel } from '../../src/model/siglip_model.js';
import type { PairBatch } from '../../src/train/forward.js';
import { lossAndGrads } from '../../src/train/grads.js';
import { LoraAdapters } from '../../src/train/lora.js';
import type { Param } from '../../src/train/params.js';
import { LinearProbe } from '../../src/train/probe.js';
import { setGradientCheckpointing } from '../../src/train/recompute.js';
import { Trainer } from '../../src/train/trainer.js';
import { fixture } from '../helpers/fixtures.js';
import { lossGradFixtureBatch } from '../helpers/loss_grad_batch.js';
import { naflexBatch } from '../helpers/naflex_batch.js';
import { skipUnavailable } from '../helpers/require_backend.js';

/** The fixture's loss and the global L2 norm of all its golden gradients. */
async function referenceLossAndNorm(): Promise<{ loss: number; norm: number }> {
  const out = await readSafetensors(fixture('siglip_tiny_loss_grad', 'outputs.safetensors'));
  let sq = 0;
  for (const [name, t] of out) {
    if (name.startsWith('grad.')) for (const v of t.data as Float32Array) sq += v * v;
  }
  return { loss: Number(out.get('loss')?.data[0]), norm: Math.sqrt(sq) };
}

describe('training on webgpu in Node (Dawn)', function () {
  this.timeout(900000);

  before(async function () {
    try {
      const r = await useBackend('webgpu');
      console.log(`      ${r.reason}`);
    } catch (e) {
      skipUnavailable(this, 'webgpu', (e as Error).message);
    }
  });

  after(async () => {
    await useBackend('cpu');
  });

  for (const gradientCheckpointing of [false, true]) {
    it(`siglip_tiny_loss_grad: the loss and every gradient equal the reference (checkpointing ${gradientCheckpointing})`, async () => {
      const before = tf.memory().numTensors;
      const rows = await checkLossGradFixture(fixture('siglip_tiny_loss_grad'), {
        gradientCheckpointing,
      });
      assert.deepEqual(
        rows.filter((r) => !r.ok),
        [],
        formatComparisons(rows),
      );
      assert.equal(rows.filter((r) => r.name.startsWith('grad.')).length, 88);
      assert.equal(tf.memory().numTensors, before, 'tensors leaked');
    });
  }

  for (const mode of ['sharded', 'cpu'] as const) {
    it(`siglip_tiny_loss_grad with the token table looked up ${mode === 'sharded' ? 'in forced row shards' : 'on the CPU'}: every gradient equals the reference`, async () => {
      setTokenTableMode(mode);
      try {
        const rows = await checkLossGradFixture(fixture('siglip_tiny_loss_grad'));
        assert.deepEqual(
          rows.filter((r) => !r.ok),
          [],
          formatComparisons(rows),
        );
        const table = rows.find((r) => r.name.endsWith('token_embedding.weight'));
        assert.ok(table && table.ok, 'the token table gradient was compared');
      } finally {
        setTokenTableMode(undefined);
      }
    });
  }

  it('Trainer steps (clipping, evaluation) lower the loss and leak nothing', async () => {
    const model = await loadHfCheckpoint(fixture('siglip_tiny_loss_grad'), {
      onUnused: () => undefined,
    });
    const batch = await lossGradFixtureBatch();
    const trainer = new Trainer(model, { learningRate: 1e-3, maxGradNorm: 1 });
    try {
      const before = await trainer.evaluate(batch, 3);
      const ref = await referenceLossAndNorm();
      const losses: number[] = [];
      const norms: number[] = [];
      let count = -1;
      for (let i = 0; i < 3; i++) {
        const t0 = performance.now();
        const r = await trainer.step(batch);
        losses.push(r.loss);
        norms.push(r.gradNorm);
        console.log(
          `      step ${i + 1}: loss ${r.loss.toFixed(4)}, grad norm ${r.gradNorm.toFixed(3)}, ` +
            `${((performance.now() - t0) / 1000).toFixed(2)} s`,
        );
        if (i === 0) count = tf.memory().numTensors;
        else assert.equal(tf.memory().numTensors, count, `tensors after step ${i + 1}`);
      }
      // The first step's loss and gradient norm are the reference's (the norm of every golden gradient).
      assert.ok(Math.abs(losses[0] - ref.loss) < 1e-4, `loss ${losses[0]} vs ${ref.loss}`);
      assert.ok(Math.abs(norms[0] - ref.norm) < 1e-3 * ref.norm, `norm ${norms[0]} vs ${ref.norm}`);
      assert.ok(Math.abs(before.loss - ref.loss) < 1e-4, `evaluate ${before.loss} vs ${ref.loss}`);
      assert.ok(losses[2] < losses[0], `losses ${losses.join(' ')}`);
      const after = await trainer.evaluate(batch, 3);
      assert.ok(after.loss < before.loss, `held-out loss ${before.loss} -> ${after.loss}`);
    } finally {
      trainer.dispose();
      tf.dispose([batch.pixelValues, batch.inputIds]);
      model.dispose();
    }
  });

  it('a linear probe fits and scores (accuracy read asynchronously)', async () => {
    // two classes on either side of a plane: separable, so the probe gets them all
    const x = tf.tidy(() => {
      const r = tf.randomNormal([24, 8], 0, 1, 'float32', 3);
      const sign = tf
        .tensor1d(Array.from({ length: 24 }, (_, i) => (i % 2 ? 3 : -3)))
        .expandDims(1);
      return r.add(sign.mul(tf.oneHot([0], 8))) as tf.Tensor2D;
    });
    const labels = Array.from({ length: 24 }, (_, i) => i % 2);
    const probe = await LinearProbe.fit(x, labels, 2, { epochs: 60, learningRate: 0.1 });
    try {
      assert.equal(await probe.accuracy(x, labels), 1);
    } finally {
      probe.dispose();
      x.dispose();
    }
  });

  /** The gradients of `setup`'s parameters on `backend` (read back), with the loss. */
  async function gradsOn(
    backend: 'cpu' | 'webgpu',
    setup: () => Promise<{
      model: SiglipModel;
      batch: PairBatch;
      params?: Param[];
      done?: () => void;
    }>,
  ): Promise<{ loss: number; grads: Map<string, Float32Array> }> {
    await useBackend(backend);
    const { model, batch, params, done } = await setup();
    try {
      const r = await lossAndGrads(model, batch, params);
      const grads = new Map<string, Float32Array>();
      for (const [k, g] of r.grads) grads.set(k, (await g.data()) as Float32Array);
      const loss = (await r.loss.data())[0];
      tf.dispose([r.loss, ...r.grads.values()]);
      return { loss, grads };
    } finally {
      tf.dispose(Object.values(batch).filter((t): t is tf.Tensor => t instanceof tf.Tensor));
      done?.();
      model.dispose();
      await useBackend('webgpu');
    }
  }

  /** Every gradient within the fixture's tolerance (1e-3 of the tensor's max|grad|, 1e-6 absolute floor). */
  function gradientMismatches(
    got: Map<string, Float32Array>,
    want: Map<string, Float32Array>,
  ): string[] {
    assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
    const bad: string[] = [];
    for (const [k, w] of want) {
      const g = got.get(k) as Float32Array;
      let max = 0;
      let diff = 0;
      for (let i = 0; i < w.length; i++) {
        max = Math.max(max, Math.abs(w[i]));
        diff = Math.max(diff, Math.abs(g[i] - w[i]));
      }
      if (!(diff <= Math.max(1e-3 * max, 1e-6))) bad.push(`${k}: ${diff} (max|grad| ${max})`);
    }
    return bad;
  }

  for (const gradientCheckpointing of [false, true]) {
    it(`NaFlex (masked patches, resized positions): gradients equal the cpu backend's (checkpointing ${gradientCheckpointing})`, async () => {
      const setup = async () => {
        const model = await loadHfCheckpoint(fixture('siglip2_naflex_tiny'), {
          onUnused: () => undefined,
        });
        setGradientCheckpointing(model, gradientCheckpointing);
        return { model, batch: await naflexBatch() };
      };
      const want = await gradsOn('cpu', setup);
      const got = await gradsOn('webgpu', setup);
      assert.ok(Math.abs(got.loss - want.loss) < 1e-4, `loss ${got.loss} vs ${want.loss}`);
      assert.deepEqual(gradientMismatches(got.grads, want.grads), []);
    });
  }

  it("LoRA adapters with gradient checkpointing: gradients equal the cpu backend's", async () => {
    const setup = async () => {
      const model = await loadHfCheckpoint(fixture('siglip_tiny_loss_grad'), {
        onUnused: () => undefined,
      });
      setGradientCheckpointing(model, true);
      const lora = LoraAdapters.attach(model, { rank: 2, alpha: 4, seed: 5 });
      // B starts at zero (dA = 0): give it values so that both adapters get a gradient.
      for (const p of lora.params) {
        if (p.name.endsWith('lora_b')) {
          const b = tf.randomNormal(p.variable.shape as number[], 0, 0.1, 'float32', 9);
          p.variable.write(b);
          b.dispose();
        }
      }
      return {
        model,
        batch: await lossGradFixtureBatch(),
        params: lora.params,
        done: () => lora.remove(),
      };
    };
    const want = await gradsOn('cpu', setup);
    const got = await gradsOn('webgpu', setup);
    assert.ok(Math.abs(got.loss - want.loss) < 1e-4, `loss ${got.loss} vs ${want.loss}`);
    assert.deepEqual(gradientMismatches(got.grads, want.grads), []);
  });
});
