import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { checkLossGradFixture, readCases, zeroParts } from '../../src/check/index.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { lookupWithTableGradient, tableGradient } from '../../src/layers/kernels/table_lookup.js';
import { type TokenTableMode, setTokenTableMode } from '../../src/layers/text_embeddings.js';
import { shardTable, shardedGather } from '../../src/backends/sharded_gather.js';
import { recomputeInBackward, withGradientTargets } from '../../src/layers/kernels/recompute.js';
import { loadHfCheckpoint } from '../../src/model/load_hf.js';
import { lossAndGrads } from '../../src/train/grads.js';
import { modelParams, toHfTensors } from '../../src/train/params.js';
import { spawnSync } from 'node:child_process';
import { REPO_ROOT, fixture } from '../helpers/fixtures.js';
import { lossGradFixtureBatch } from '../helpers/loss_grad_batch.js';

const MODES: Exclude<TokenTableMode, 'auto'>[] = ['device', 'sharded', 'cpu'];
const BACKENDS = ['cpu', 'wasm'];

/** A table of distinct values: row r, column c holds r + c / 10. */
function table(rows: number, cols: number): tf.Tensor2D {
  return tf.tidy(() =>
    tf.range(0, rows).expandDims(1).add(tf.range(0, cols).div(10).expandDims(0)),
  ) as tf.Tensor2D;
}

describe('train: the token table gets its gradient in every lookup mode', () => {
  const dir = () => fixture('siglip_tiny_loss_grad');

  before(async () => {
    await tf.setBackend('cpu');
  });

  afterEach(async () => {
    setTokenTableMode(undefined);
    await tf.setBackend('cpu');
  });

  it('tableGradient equals the gradient TF.js derives for tf.gather (repeats, out-of-range ids)', () => {
    const t = table(10, 3);
    const ids = tf.tensor2d(
      [
        [0, 3, 3, 9],
        [4, 7, 12, -1],
      ],
      [2, 4],
      'int32',
    );
    const dy = tf.randomNormal([2, 4, 3], 0, 1, 'float32', 7);
    // tf.gather's own gradient (an out-of-range id has no defined gather, so the reference uses the clipped ids
    // with the incoming rows of out-of-range ids zeroed, which is what the lookup's zero rows mean).
    const valid = tf.logicalAnd(ids.greaterEqual(0), ids.less(10));
    const dyValid = tf.where(valid.expandDims(2), dy, tf.zerosLike(dy));
    const reference = tf.grad((x: tf.Tensor) =>
      tf
        .gather(x, tf.clipByValue(ids, 0, 9))
        .mul(dyValid)
        .sum(),
    )(t);
    const got = tableGradient(dy, ids, 10, 'test table');
    assert.deepEqual(got.shape, [10, 3]);
    assert.deepEqual(Array.from(got.dataSync()), Array.from(reference.dataSync()));
    // row 3 got two rows, row 9 (the last) one, rows 1 and 8 none
    const g = got.arraySync();
    assert.ok(g[3].some((v) => v !== 0) && g[9].some((v) => v !== 0));
    assert.deepEqual(g[1], [0, 0, 0]);
    assert.deepEqual(g[8], [0, 0, 0]);
    tf.dispose([t, ids, dy, valid, dyValid, reference, got]);
  });

  it('a sharded lookup differentiates like tf.gather, and its forward value is the sharded rows', () => {
    const t = table(10, 3);
    const shards = shardTable(t.dataSync() as Float32Array, [10, 3], 4 * 3 * 4);
    assert.equal(shards.length, 3);
    const ids = tf.tensor2d(
      [
        [1, 5, 5],
        [9, 0, 8],
      ],
      [2, 3],
      'int32',
    );
    const w = tf.randomNormal([2, 3, 3], 0, 1, 'float32', 3);
    const f = (x: tf.Tensor) =>
      lookupWithTableGradient(
        x as tf.Tensor2D,
        ids,
        () => shardedGather(shards, ids),
        [4, 4, 2],
        't',
      )
        .mul(w)
        .sum();
    const { value, grad } = tf.valueAndGrad(f)(t);
    const ref = tf.valueAndGrad((x: tf.Tensor) => tf.gather(x, ids).mul(w).sum())(t);
    assert.equal(value.dataSync()[0], ref.value.dataSync()[0]);
    assert.deepEqual(Array.from(grad.dataSync()), Array.from(ref.grad.dataSync()));
    assert.throws(
      () => lookupWithTableGradient(t, ids, () => shardedGather(shards, ids), [4, 4], 'tok'),
      /shards of 'tok' hold 8 rows, the table has 10/,
    );
    tf.dispose([t, ...shards, ids, w, value, grad, ref.value, ref.grad]);
  });

  it('the loss and every gradient match the reference in every mode on cpu and wasm', async () => {
    for (const backend of BACKENDS) {
      await tf.setBackend(backend);
      for (const mode of MODES) {
        setTokenTableMode(mode);
        const before = tf.memory().numTensors;
        const rows = await checkLossGradFixture(dir());
        const bad = rows.filter((r) => !r.ok).map((r) => `${r.name} ${r.maxAbs} ${r.note}`);
        assert.deepEqual(bad, [], `${backend}/${mode}: ${bad.join('\n')}`);
        assert.ok(
          rows.some((r) => r.name === 'grad.text_model.embeddings.token_embedding.weight' && r.ok),
          `${backend}/${mode}: the token table's gradient was not compared`,
        );
        assert.equal(tf.memory().numTensors, before, `${backend}/${mode}: tensors leaked`);
      }
    }
  });

  it('no trainable weight has an identically zero gradient where the reference has a non-zero one', async () => {
    const cases = await readCases(dir());
    const zero = new Set(
      zeroParts(cases)
        .filter((z) => !z.range)
        .map((z) => z.output),
    );
    const expected = await readSafetensors(join(dir(), 'outputs.safetensors'));
    const batch = await lossGradFixtureBatch();
    try {
      for (const backend of BACKENDS) {
        await tf.setBackend(backend);
        for (const mode of MODES) {
          setTokenTableMode(mode);
          const model = await loadHfCheckpoint(dir(), { onUnused: () => undefined });
          const { loss, grads } = await lossAndGrads(model, batch);
          const hf = toHfTensors(model, grads);
          const dead: string[] = [];
          let checked = 0;
          for (const [name, golden] of expected) {
            if (!name.startsWith('grad.') || zero.has(name)) continue;
            if (!golden.data.some((v) => v !== 0)) continue;
            const g = hf.get(name.slice(5));
            assert.ok(g, `${backend}/${mode}: no gradient for ${name}`);
            checked++;
            if (!g.dataSync().some((v) => v !== 0)) dead.push(name);
          }
          tf.dispose([loss, ...grads.values(), ...hf.values()]);
          model.dispose();
          assert.deepEqual(dead, [], `${backend}/${mode}: identically zero gradients`);
          // 88 gradients less the 4 mathematically-zero k_proj biases
          assert.equal(checked, 84, `${backend}/${mode}: gradients checked`);
        }
      }
    } finally {
      tf.dispose([batch.pixelValues, batch.inputIds]);
    }
  });

  it('a trainable weight the loss does not reach is an error naming it, not a zero gradient', async () => {
    const model = await loadHfCheckpoint(dir(), { onUnused: () => undefined });
    const batch = await lossGradFixtureBatch();
    const before = tf.memory().numTensors;
    try {
      // A loss of the image tower alone: the text tower's and the scores' weights get no gradient.
      const visionOnly = () =>
        tf.tidy(() => {
          const vision = model.vision;
          assert.ok(vision);
          const out = vision.model.apply(vision.feeds(batch), { training: true }) as tf.Tensor[];
          return out[1].square().mean() as tf.Scalar;
        });
      await assert.rejects(
        () => lossAndGrads(model, batch, modelParams(model), visionOnly),
        /no gradient path to \d+ trainable weight\(s\): text:embeddings\/token_embedding\/embeddings/,
      );
      assert.equal(tf.memory().numTensors, before, 'tensors leaked on the error path');
      // Only the vision tower's weights: fine.
      const visionParams = modelParams(model).filter((p) => p.tower === 'vision');
      const { loss, grads } = await lossAndGrads(model, batch, visionParams, visionOnly);
      assert.equal(grads.size, visionParams.length);
      tf.dispose([loss, ...grads.values()]);
    } finally {
      tf.dispose([batch.pixelValues, batch.inputIds]);
      model.dispose();
    }
  });

  it('gradient checkpointing: a trained weight its recomputed block does not reach is an error naming it', () => {
    const used = tf.variable(tf.tensor1d([1, 2, 3]), true, 'used_weight');
    const unused = tf.variable(tf.tensor1d([4, 5, 6]), true, 'unused_weight');
    const x = tf.tensor1d([0.5, -1, 2]);
    const loss = () =>
      recomputeInBackward(([t]) => t.mul(used).sum(), [x], [used, unused]) as tf.Scalar;
    try {
      const ok = withGradientTargets([used], () => tf.variableGrads(loss, [used]));
      assert.deepEqual(Array.from(ok.grads.used_weight.dataSync()), [0.5, -1, 2]);
      tf.dispose([ok.value, ...Object.values(ok.grads)]);
      assert.throws(
        () => withGradientTargets([used, unused], () => tf.variableGrads(loss, [used, unused])),
        /no gradient reached the trained weight 'unused_weight' inside its recomputed block/,
      );
    } finally {
      tf.dispose([used, unused, x]);
    }
  });

  it('`SIGLIP2_TOKEN_TABLE=sharded|cpu siglip2 check` passes the loss/gradient fixture (the reported command)', () => {
    for (const mode of ['sharded', 'cpu']) {
      const r = spawnSync(
        process.execPath,
        [join(REPO_ROOT, 'dist/src/cli/main.js'), 'check', dir(), '--backend', 'cpu'],
        { encoding: 'utf8', timeout: 300_000, env: { ...process.env, SIGLIP2_TOKEN_TABLE: mode } },
      );
      assert.equal(r.status, 0, `${mode}: ${r.stdout}\n${r.stderr}`);
      assert.match(r.stdout, /grad\.text_model\.embeddings\.token_embedding\.weight\s.*ok/);
      assert.match(r.stdout, /all 92 outputs within tolerance/);
    }
  });
});
