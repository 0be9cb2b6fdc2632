import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import {
  BackendUnavailableError,
  TensorflowBackendUnavailable,
  assertFitsBinding,
  bindingLimit,
  isSoftwareAdapter,
  loadTensorflowBackend,
  shardTable,
  shardedGather,
  useBackend,
} from '../../src/backends/index.js';
import { compareArrays } from '../../src/check/compare.js';
import {
  assertWorkloadClose,
  expectedRows,
  pattern,
  runWorkload,
  type WorkloadResult,
} from './workload.js';
import { skipBecause } from '../helpers/require_backend.js';

describe('backends: useBackend', () => {
  let reference: WorkloadResult;

  before(async () => {
    const report = await useBackend('cpu');
    assert.equal(report.name, 'cpu');
    assert.equal(tf.getBackend(), 'cpu');
    reference = await runWorkload();
  });

  after(async () => {
    await useBackend('cpu');
  });

  it('wasm with 1 thread matches the cpu backend', async () => {
    const report = await useBackend('wasm', { threads: 1 });
    assert.equal(report.name, 'wasm');
    assert.equal(report.threads, 1);
    assertWorkloadClose(await runWorkload(), reference, { atol: 2e-4, rtol: 0 });
  });

  it('wasm with 2 threads in Node runs 2 threads and matches the cpu backend', async () => {
    const report = await useBackend('wasm', { threads: 2 });
    assert.equal(report.name, 'wasm');
    assert.equal(report.threads, 2, report.reason);
    assertWorkloadClose(await runWorkload(), reference, { atol: 2e-4, rtol: 0 });
    // a matMul large enough for the thread pool to split it
    const [m, k, n] = [128, 256, 192];
    const x = pattern(m * k, 5, 0.5);
    const w = pattern(k * n, 6, 0.5);
    const run = async () => {
      const c = tf.tidy(() => tf.matMul(tf.tensor2d(x, [m, k]), tf.tensor2d(w, [k, n])));
      const d = await c.data();
      c.dispose();
      return d;
    };
    const threaded = await run();
    await useBackend('cpu');
    const cpu = await run();
    const cmp = compareArrays('matMul 128x256x192', threaded, cpu, [m, n], { atol: 2e-4, rtol: 0 });
    assert.ok(cmp.ok, `maxAbs ${cmp.maxAbs}`);
  });

  it('auto picks a backend and says why in one line', async () => {
    const report = await useBackend('auto', { threads: 2 });
    assert.ok(['tensorflow', 'native', 'webgpu', 'wasm'].includes(report.name));
    assert.equal(tf.getBackend(), report.name);
    assert.match(report.reason, /^auto: /);
    assert.ok(!report.reason.includes('\n'));
  });

  it('rejects an unknown backend name and bad thread counts', async () => {
    await assert.rejects(useBackend('gpu' as 'cpu'), /unknown backend 'gpu'/);
    await assert.rejects(useBackend('wasm', { threads: 0 }), /threads must be a positive integer/);
  });
});

describe('backends: tensorflow (tfjs-node) is optional', () => {
  const missing = async (spec: string) => {
    throw Object.assign(new Error(`Cannot find package '${spec}'`), {
      code: 'ERR_MODULE_NOT_FOUND',
    });
  };

  it('says what to install when neither tfjs-node package is present', async () => {
    await assert.rejects(loadTensorflowBackend(missing), (e: Error) => {
      assert.ok(e instanceof TensorflowBackendUnavailable);
      // unavailable by type, with a one-line reason for reports (no message parsing)
      assert.ok(e instanceof BackendUnavailableError);
      assert.equal(e.backend, 'tensorflow');
      assert.equal(e.why, 'tfjs-node(-gpu) not installed');
      assert.match(e.message, /@tensorflow\/tfjs-node-gpu: not installed/);
      assert.match(e.message, /npm install @tensorflow\/tfjs-node /);
      assert.match(e.message, /npm install @tensorflow\/tfjs-node-gpu .*CUDA 11\.2 and cuDNN 8\.1/);
      return true;
    });
  });

  it('reports a package that is installed but fails to load (e.g. no native addon)', async () => {
    const broken = async (spec: string) => {
      if (spec === '@tensorflow/tfjs-node')
        throw new Error('The Node.js native addon module (tfjs_binding.node) can not be found');
      return missing(spec);
    };
    await assert.rejects(loadTensorflowBackend(broken), (e: Error) => {
      assert.ok(e instanceof BackendUnavailableError);
      assert.match(e.message, /tfjs-node: The Node\.js native addon module/);
      assert.equal(
        e.why,
        '@tensorflow/tfjs-node-gpu: not installed; @tensorflow/tfjs-node: The Node.js native addon module ' +
          '(tfjs_binding.node) can not be found',
      );
      return true;
    });
  });

  it('uses tfjs-node-gpu first when the importer finds it', async () => {
    const seen: string[] = [];
    const pkg = await loadTensorflowBackend(async (spec) => {
      seen.push(spec);
      return {};
    });
    assert.equal(pkg, '@tensorflow/tfjs-node-gpu');
    assert.deepEqual(seen, ['@tensorflow/tfjs-node-gpu']);
  });

  it("useBackend('tensorflow') fails with the install hint when the packages are absent", async function () {
    let installed = true;
    try {
      await import('@tensorflow/tfjs-node' as string);
    } catch {
      installed = false;
    }
    if (installed) skipBecause(this, '@tensorflow/tfjs-node is installed here');
    await assert.rejects(useBackend('tensorflow'), /npm install @tensorflow\/tfjs-node/);
  });
});

describe('backends: binding guard and sharded gather (any backend)', () => {
  it('assertFitsBinding names the tensor over the limit and passes tensors under it', () => {
    assert.throws(
      () =>
        assertFitsBinding(
          'text_model.embeddings.token_embedding.weight',
          [256000, 1152],
          4,
          128 * 2 ** 20,
        ),
      /'text_model\.embeddings\.token_embedding\.weight' \[256000, 1152\] is 1\.10 GiB, over the WebGPU storage-buffer binding limit of 128\.0 MiB/,
    );
    assertFitsBinding('small', [1000, 1152], 4, 128 * 2 ** 20);
    assertFitsBinding('no limit', [256000, 1152], 4, undefined);
  });

  it('bindingLimit is undefined off webgpu', async () => {
    await useBackend('cpu');
    assert.equal(bindingLimit(), undefined);
  });

  it('detects software adapters', () => {
    const info = (vendor: string, architecture: string, device: string, description: string) => ({
      vendor,
      architecture,
      device,
      description,
    });
    assert.ok(isSoftwareAdapter(info('mesa', '', '', 'llvmpipe (LLVM 15.0.6, 256 bits)')));
    assert.ok(isSoftwareAdapter(info('google', 'swiftshader', '', '')));
    assert.ok(isSoftwareAdapter(info('', '', '', ''), true));
    assert.ok(!isSoftwareAdapter(info('nvidia', 'hopper', '', 'NVIDIA H100 80GB HBM3')));
  });

  it('shardTable + shardedGather return the rows of the whole table', async () => {
    await useBackend('cpu');
    const [rows, cols] = [37, 8];
    const data = pattern(rows * cols, 9);
    const shards = shardTable(data, [rows, cols], 10 * cols * 4);
    assert.deepEqual(
      shards.map((s) => s.shape[0]),
      [10, 10, 10, 7],
    );
    const ids = [0, 9, 10, 36, 20, 19, 29, 30, 0];
    const out = shardedGather(shards, ids);
    assert.deepEqual(out.shape, [ids.length, cols]);
    assert.deepEqual(await out.data(), expectedRows(data, cols, ids));
    const ids2d = tf.tensor2d([5, 35, 11, 12], [2, 2], 'int32');
    const out2 = shardedGather(shards, ids2d);
    assert.deepEqual(out2.shape, [2, 2, cols]);
    assert.deepEqual(await out2.data(), expectedRows(data, cols, [5, 35, 11, 12]));
    tf.dispose([out, out2, ids2d, ...shards]);
  });

  it('shardedGather and shardTable reject bad input with clear errors', () => {
    const shards = shardTable(new Float32Array(12), [4, 3], 24);
    assert.throws(() => shardedGather(shards, [4]), /id 4 is out of range for a table of 4 rows/);
    assert.throws(() => shardedGather([], [0]), /no shards/);
    assert.throws(
      () => shardTable(new Float32Array(11), [4, 3]),
      /'table' has 11 values, shape \[4, 3\] needs 12/,
    );
    assert.throws(
      () => shardTable(new Float32Array(12), [4, 3], 8),
      /one row of 'table' \(12 bytes\) exceeds/,
    );
    tf.dispose(shards);
  });
});
