/**
 * WebGPU in Node through Dawn. On a machine without a GPU this needs lavapipe from scripts/setup-vulkan.sh
 * (.ci/run runs it); the suite is skipped, saying why, when no adapter is found (it fails instead when CI names
 * `webgpu` in SIGLIP2_REQUIRE_BACKENDS).
 */
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import {
  BackendUnavailableError,
  MAX_BINDING_ENV,
  assertFitsBinding,
  bindingLimit,
  forceBindingLimit,
  shardTable,
  shardedGather,
  useBackend,
  type BackendReport,
} from '../../src/backends/index.js';
import {
  assertWorkloadClose,
  expectedRows,
  hashPattern,
  pattern,
  runWorkload,
} from './workload.js';
import { skipBecause, skipUnavailable } from '../helpers/require_backend.js';

describe('backends: webgpu (Node, Dawn)', function () {
  let report: BackendReport;

  before(async function () {
    const cpu = await useBackend('cpu');
    assert.equal(cpu.name, 'cpu');
    try {
      report = await useBackend('webgpu');
    } catch (e) {
      // only a missing adapter or package skips; a backend that is there and breaks fails the suite
      if (!(e instanceof BackendUnavailableError)) throw e;
      skipUnavailable(this, 'webgpu', e.message);
    }
    console.log(`      ${report.reason}`);
  });

  after(async () => {
    forceBindingLimit(undefined);
    await useBackend('cpu');
  });

  it('reports the adapter and its limits', () => {
    assert.equal(report.name, 'webgpu');
    assert.ok(report.adapterInfo !== undefined);
    assert.ok(report.limits !== undefined && report.limits.maxStorageBufferBindingSize >= 2 ** 27);
    assert.ok(report.limits.maxBufferSize >= report.limits.maxStorageBufferBindingSize);
    assert.equal(bindingLimit(), report.limits.maxStorageBufferBindingSize);
  });

  it('matMul, softmax and gather equal the cpu backend within 1e-5', async () => {
    await useBackend('cpu');
    const reference = await runWorkload();
    await useBackend('webgpu');
    assertWorkloadClose(await runWorkload(), reference, { atol: 1e-5, rtol: 0 });
  });

  it('the guard fires for a limit forced smaller (option and environment variable)', () => {
    forceBindingLimit(1024);
    try {
      assert.equal(bindingLimit(), 1024);
      assert.throws(
        () => assertFitsBinding('embeddings', [16, 32]),
        /'embeddings' \[16, 32\] is 2048 bytes, over .* 1024 bytes/,
      );
      const shards = shardTable(pattern(16 * 32, 1), [16, 32], 2048);
      assert.throws(() => shardedGather(shards, [0]), /'shardedGather shard 0' \[16, 32\]/);
      tf.dispose(shards);
    } finally {
      forceBindingLimit(undefined);
    }
    process.env[MAX_BINDING_ENV] = '4096';
    try {
      assert.equal(bindingLimit(), 4096);
      assertFitsBinding('fits', [32, 32]);
      assert.throws(() => assertFitsBinding('too big', [33, 32]), /'too big'/);
    } finally {
      delete process.env[MAX_BINDING_ENV];
    }
    assert.equal(bindingLimit(), report.limits?.maxStorageBufferBindingSize);
  });

  it('a gather from a table over the binding limit silently gives zeros; a row-sharded gather is right', async function () {
    const limit = report.limits?.maxStorageBufferBindingSize ?? 0;
    // the demonstration allocates limit + 8 MiB: only on small-limit adapters
    if (limit > 2 ** 28) {
      skipBecause(
        this,
        `the adapter's binding limit ${limit} is over 256 MiB (lavapipe has 128 MiB)`,
      );
    }
    const cols = 1152;
    const rows = Math.floor(limit / (cols * 4)) + 2000; // about 8.8 MiB over the limit
    const data = hashPattern(rows * cols, 4);
    const ids = [0, 7, rows - 1, 12345, rows - 2000];
    const expected = expectedRows(data, cols, ids);

    // TF.js binds the whole table as one storage buffer; over the limit Dawn rejects the binding with a
    // validation message only, and the op reads zeros.
    const whole = tf.tensor2d(data, [rows, cols]);
    const plain = tf.gather(whole, tf.tensor1d(ids, 'int32'));
    const plainData = await plain.data();
    tf.dispose([whole, plain]);
    assert.ok(
      plainData.every((v) => v === 0),
      'expected the unguarded gather to read zeros (if this WebGPU stack now fails loudly or reads right, update docs)',
    );
    assert.throws(
      () => assertFitsBinding('table', [rows, cols]),
      /'table' .* over the WebGPU storage-buffer binding limit/,
    );

    const shards = shardTable(data, [rows, cols]);
    assert.equal(shards.length, 2);
    const sharded = shardedGather(shards, ids);
    assert.deepEqual(await sharded.data(), expected);
    tf.dispose([sharded, ...shards]);
  });
});
