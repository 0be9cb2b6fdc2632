/**
 * The model on WebGPU under any storage-buffer binding limit: the token table is row-sharded (or looked up on
 * the CPU) when it is over the limit, every other weight is checked at load. Needs lavapipe (scripts/setup-vulkan.sh)
 * without a GPU; skipped, saying why, when there is no adapter (failed when CI requires `webgpu`).
 */
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import {
  BackendUnavailableError,
  type BackendReport,
  forceBindingLimit,
  useBackend,
} from '../../src/backends/index.js';
import { checkModelFixture, formatComparisons } from '../../src/check/index.js';
import {
  SiglipTextEmbeddings,
  TOKEN_TABLE_WEIGHT,
  type TokenTableMode,
  setTokenTableMode,
} from '../../src/layers/index.js';
import { loadHfCheckpoint } from '../../src/model/load_hf.js';
import { SiglipTextModel } from '../../src/model/text_model.js';
import { parseTextConfig } from '../../src/model/config.js';
import { fixture } from '../helpers/fixtures.js';
import { skipUnavailable } from '../helpers/require_backend.js';

/** Value of cell (row, col) of the synthetic big table: unique per row, exact in float32. */
function cell(row: number, col: number): number {
  return (col >= 16 ? -1 : 1) * (row + (col % 4) / 4) + 0; // + 0: no -0
}

describe('model on webgpu under small binding limits (Node, Dawn)', function () {
  this.timeout(600000);
  let report: BackendReport;

  before(async function () {
    try {
      const r = await useBackend('webgpu');
      report = r;
      console.log(`      ${r.reason}`);
    } catch (e) {
      // only a missing adapter or package skips; a backend that is there and breaks fails the suite
      if (!(e instanceof BackendUnavailableError)) throw e;
      skipUnavailable(this, 'webgpu', e.message);
    }
  });

  afterEach(() => {
    forceBindingLimit(undefined);
    setTokenTableMode(undefined);
  });

  after(async () => {
    await useBackend('cpu');
  });

  it('siglip_tiny equals the fixture with the limit forced under the token table (2 shards)', async () => {
    // 150000 bytes: over every other weight (the largest, the patch embedding, is 147456 bytes), under the
    // 1000 x 48 token table (192000 bytes).
    forceBindingLimit(150000);
    const before = tf.memory().numTensors;
    const rows = await checkModelFixture(fixture('siglip_tiny'));
    assert.equal(rows.length, 16);
    assert.deepEqual(
      rows.filter((r) => !r.ok),
      [],
      formatComparisons(rows),
    );
    assert.equal(tf.memory().numTensors, before, 'tensors leaked');
  });

  it('the text tower equals the fixture with 7 shards, and sharded/cpu lookups agree', async () => {
    forceBindingLimit(30000); // 156 rows of 48 floats per shard
    const model = await loadHfCheckpoint(fixture('siglip_tiny'), {
      towers: 'text',
      onUnused: () => undefined,
    });
    try {
      const layer = model.text!.model.getLayer('embeddings') as SiglipTextEmbeddings;
      assert.equal(layer.resolvedTokenTableMode(), 'sharded');
      const ids = tf.tensor2d(
        [
          [999, 0, 155, 156, 157, 311, 312, 500, 1, 2, 3, 4, 5, 998, 997, 780],
          [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16],
        ],
        undefined,
        'int32',
      );
      const sharded = layer.apply(ids) as tf.Tensor;
      setTokenTableMode('cpu');
      assert.equal(layer.resolvedTokenTableMode(), 'cpu');
      const cpu = layer.apply(ids) as tf.Tensor;
      // reference: the table's rows read in JavaScript plus the position rows
      const table = layer.tokenEmbedding.read().dataSync();
      const pos = layer.positionEmbedding.read().dataSync();
      const idv = ids.dataSync();
      const expected = new Float32Array(idv.length * 48);
      for (let i = 0; i < idv.length; i++) {
        for (let c = 0; c < 48; c++) {
          expected[i * 48 + c] = table[idv[i] * 48 + c] + pos[(i % 16) * 48 + c];
        }
      }
      assert.deepEqual(await sharded.data(), expected);
      assert.deepEqual(await cpu.data(), expected);
      tf.dispose([ids, sharded, cpu]);
    } finally {
      model.dispose();
    }
  });

  it('the token table gradient of the sharded and cpu lookups equals tf.gather on cpu; over the limit it refuses, naming the table', async () => {
    // The lookup's gradient alone, against the cpu backend's tf.gather gradient (the whole loss/gradient fixture in
    // every lookup mode is in webgpu_train.test.ts).
    const ids = [
      [999, 0, 155, 156, 157, 311, 312, 500, 1, 2, 3, 4, 5, 998, 997, 780],
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 155],
    ];
    const weights = Float32Array.from({ length: 2 * 16 * 48 }, (_, i) => ((i * 37) % 101) / 50 - 1);
    const gradOn = async (backend: 'cpu' | 'webgpu', mode: TokenTableMode) => {
      await useBackend(backend);
      setTokenTableMode(mode);
      const model = await loadHfCheckpoint(fixture('siglip_tiny'), {
        towers: 'text',
        onUnused: () => undefined,
      });
      const layer = model.text!.model.getLayer('embeddings') as SiglipTextEmbeddings;
      const table = layer.tokenEmbedding.read() as tf.Variable;
      table.trainable = true;
      const idT = tf.tensor2d(ids, undefined, 'int32');
      const w = tf.tensor3d(weights, [2, 16, 48]);
      try {
        const { value, grads } = tf.variableGrads(
          () => (layer.apply(idT) as tf.Tensor).mul(w).sum() as tf.Scalar,
          [table],
        );
        const grad = (await grads[table.name].data()) as Float32Array;
        const out = { value: (await value.data())[0], grad };
        tf.dispose([value, ...Object.values(grads)]);
        return out;
      } finally {
        tf.dispose([idT, w]);
        model.dispose();
      }
    };
    const reference = await gradOn('cpu', 'device');
    assert.ok(reference.grad.some((v) => v !== 0));
    for (const mode of ['sharded', 'cpu'] as const) {
      const got = await gradOn('webgpu', mode);
      assert.ok(Math.abs(got.value - reference.value) < 1e-4, `${mode}: value`);
      const maxDiff = got.grad.reduce((m, v, i) => Math.max(m, Math.abs(v - reference.grad[i])), 0);
      assert.ok(maxDiff < 1e-5, `${mode}: gradient differs by ${maxDiff}`);
    }
    // 7 shards: the gradient [1000, 48] (192000 bytes) could not be one tensor under a 30000-byte limit.
    forceBindingLimit(30000);
    await assert.rejects(
      gradOn('webgpu', 'sharded'),
      /gradient of 'embeddings\/token_embedding\/embeddings' \[1000, 48\] is 192000 bytes, over .*freeze the text embeddings/,
    );
  });

  it('a weight over the limit that cannot be split fails at load, naming it', async () => {
    forceBindingLimit(30000);
    await assert.rejects(
      loadHfCheckpoint(fixture('siglip_tiny'), { onUnused: () => undefined }),
      /patch_embedding.*is 144\.0 KiB|patch_embedding[^']*' \[16, 16, 3, 48\] is 147456 bytes, over the WebGPU storage-buffer binding limit of 30000 bytes/,
    );
  });

  it('a 144 MiB token table (over lavapipe 128 MiB) gives the right rows; a plain gather would not', async function () {
    forceBindingLimit(2 ** 27); // lavapipe's own limit; lowers a bigger adapter's
    const vocab = 1_179_648; // x 32 floats = 144 MiB
    const hidden = 32;
    const text = SiglipTextModel.build(
      parseTextConfig(
        {
          vocab_size: vocab,
          hidden_size: hidden,
          intermediate_size: 64,
          num_hidden_layers: 1,
          num_attention_heads: 2,
          max_position_embeddings: 8,
          projection_size: hidden,
        },
        'test',
        'siglip_text_model',
      ),
      { weightInit: 'zeros' },
    );
    try {
      const layer = text.model.getLayer('embeddings') as SiglipTextEmbeddings;
      const data = new Float32Array(vocab * hidden);
      for (let r = 0; r < vocab; r++) {
        for (let c = 0; c < hidden; c++) data[r * hidden + c] = cell(r, c);
      }
      const weight = text.model.weights.find((w) => w.originalName.endsWith(TOKEN_TABLE_WEIGHT))!;
      weight.write(tf.tensor2d(data, [vocab, hidden]));
      assert.equal(layer.resolvedTokenTableMode(), 'sharded');
      const wanted = [0, 1, 1048575, 1048576, 1048577, vocab - 1, 524288, 777777];
      const ids = tf.tensor2d([wanted], [1, 8], 'int32');
      setTokenTableMode('cpu');
      const cpu = (layer.apply(ids) as tf.Tensor).squeeze([0]);
      setTokenTableMode(undefined);
      const got = (layer.apply(ids) as tf.Tensor).squeeze([0]);
      const pos = layer.positionEmbedding.read(); // zeros
      assert.equal(
        (await pos.data()).every((v) => v === 0),
        true,
      );
      const values = await got.data();
      for (let i = 0; i < wanted.length; i++) {
        for (let c = 0; c < hidden; c++) {
          assert.equal(values[i * hidden + c], cell(wanted[i], c), `row ${wanted[i]} col ${c}`);
        }
      }
      assert.deepEqual(await cpu.data(), values);
      cpu.dispose();
      got.dispose();
      if (report.limits!.maxStorageBufferBindingSize < vocab * hidden * 4) {
        // The trap this avoids: the same lookup as one tf.gather fails validation on this adapter and gives
        // zeros or stale buffer contents, without an exception.
        setTokenTableMode('device');
        // other ids and shape than above, so no pooled buffer holds the right answer by accident
        const others = [vocab - 2, 1048578, 3, 900000, 5, 1100000, 7];
        const otherIds = tf.tensor2d([others], [1, 7], 'int32');
        const plain = layer.apply(otherIds) as tf.Tensor;
        const plainValues = await plain.data();
        otherIds.dispose();
        const right = Float32Array.from({ length: 7 * hidden }, (_, i) =>
          cell(others[Math.floor(i / hidden)], i % hidden),
        );
        assert.notDeepEqual(plainValues, right);
        plain.dispose();
      }
      ids.dispose();
    } finally {
      text.dispose();
    }
  });
});
