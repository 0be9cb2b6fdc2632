import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { strict as assert } from 'node:assert';
import { checkModelFixture } from '../../src/check/model_fixture.js';
import { setWasmPackCacheLimit } from '../../src/layers/kernels/linear.js';
import { ensureWasmKernels, wasmKernelsReplaced } from '../../src/layers/kernels/wasm_kernels.js';
import { fixture } from '../helpers/fixtures.js';

interface WasmBackendProbe {
  getMemoryOffset(dataId: object): number;
}

const SHAPE = [6, 5, 7, 9];
const data = Float32Array.from({ length: 6 * 5 * 7 * 9 }, (_, i) => Math.sin(i) * 10);
const SLICES: [number[], number[]][] = [
  [
    [2, 0, 0, 0],
    [3, 5, 7, 9],
  ], // contiguous rows
  [
    [4, 3, 0, 0],
    [1, 2, 7, 9],
  ], // contiguous run inside a row
  [
    [1, 2, 3, 4],
    [2, 3, 4, 5],
  ], // strided
  [
    [5, 4, 6, 0],
    [1, 1, 1, 9],
  ],
];

function run(): { slices: number[][]; unstacked: number[][][] } {
  const x = tf.tensor(data, SHAPE);
  const slices = SLICES.map(([b, s]) => Array.from(tf.slice(x, b, s).dataSync()));
  const unstacked = [0, 1, 3].map((axis) =>
    tf.unstack(x, axis).map((t) => Array.from(t.dataSync())),
  );
  return { slices, unstacked };
}

describe('wasm kernel replacements (Slice, Unpack, Identity)', () => {
  after(async () => {
    await tf.setBackend('cpu');
  });

  it('slice and unstack give the cpu backend numbers exactly, contiguous or strided, on any axis', async () => {
    await tf.setBackend('cpu');
    const want = tf.tidy(run);
    await tf.setBackend('wasm');
    ensureWasmKernels();
    assert.ok(wasmKernelsReplaced());
    const got = tf.tidy(run);
    assert.deepEqual(got, want);
  });

  it('identity (clone, and what the gradient tape saves) shares the buffer instead of copying it', async () => {
    await tf.setBackend('wasm');
    ensureWasmKernels();
    const backend = tf.backend() as unknown as WasmBackendProbe;
    const before = tf.memory().numDataBuffers;
    const x = tf.tensor(data, SHAPE);
    const y = x.clone();
    assert.equal(backend.getMemoryOffset(y.dataId), backend.getMemoryOffset(x.dataId));
    x.dispose();
    assert.deepEqual(Array.from(y.dataSync()), Array.from(data));
    y.dispose();
    assert.equal(tf.memory().numDataBuffers, before);
    // the gradient still flows through a clone
    const g = tf.grad((v: tf.Tensor) => v.clone().square().sum())(tf.tensor([1, 2, 3]));
    assert.deepEqual(Array.from(g.dataSync()), [2, 4, 6]);
    g.dispose();
  });
});

describe('wasm forward passes without the packed-kernel cache', () => {
  after(async () => {
    setWasmPackCacheLimit(2 * 2 ** 30);
    await tf.setBackend('cpu');
  });

  it('siglip_tiny still matches every fixture output with the cache off (limit 0), and leaks nothing', async () => {
    await tf.setBackend('wasm');
    setWasmPackCacheLimit(0);
    const before = tf.memory().numTensors;
    const rows = await checkModelFixture(fixture('siglip_tiny'));
    const bad = rows.filter((r) => !r.ok).map((r) => `${r.name} ${r.maxAbs}`);
    assert.deepEqual(bad, []);
    assert.ok(rows.length >= 16);
    assert.equal(tf.memory().numTensors, before);
    assert.throws(() => setWasmPackCacheLimit(-1), /bytes must be >= 0/);
  });
});
