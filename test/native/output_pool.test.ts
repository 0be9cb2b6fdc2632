import * as tf from '@tensorflow/tfjs';
import { strict as assert } from 'node:assert';
import type { NativeBackend } from '../../src/backends/native/backend.js';
import { OutputPool, poolLimitBytes } from '../../src/backends/native/output_pool.js';
import { random, requireNative } from './helpers.js';

const rand = random(5);

/** A native matMul output [rows, cols] (its array comes from the backend's pool). */
const product = (a: tf.Tensor2D, b: tf.Tensor2D) => tf.matMul(a, b);
/** Outputs of a's product's length with other values: each takes a recycled array first, if there is one. */
const otherProducts = (a: tf.Tensor2D, b: tf.Tensor2D) =>
  Array.from({ length: 4 }, (_, i) => tf.tidy(() => tf.matMul(a, b.mul(-1 - i))));

describe('native backend: recycled output arrays', function () {
  let be: NativeBackend;
  let a: tf.Tensor2D;
  let b: tf.Tensor2D;
  before(async function () {
    requireNative(this);
    await tf.setBackend('native');
    be = tf.backend() as unknown as NativeBackend;
    a = tf.tensor2d(rand(33 * 17), [33, 17]);
    b = tf.tensor2d(rand(17 * 29), [17, 29]);
  });
  after(async () => {
    tf.dispose([a, b]);
    await tf.setBackend('cpu');
  });

  it('reuses the array of a disposed kernel output for the next output of that length', () => {
    const first = product(a, b);
    const firstArray = be.f32(first, 'test', 'first');
    const want = Float32Array.from(firstArray); // a copy: reading the tensor itself would pin its array
    first.dispose();
    assert.ok(be.pooledBytes >= 33 * 29 * 4, `pool holds ${be.pooledBytes} bytes`);
    const second = tf.tidy(() => tf.matMul(b.transpose(), a.transpose()).transpose()); // [29,33] then [33,29]
    const third = product(a, b);
    const arrays = [be.f32(third, 'test', 'third'), be.f32(second, 'test', 'second')];
    assert.ok(
      arrays.some((x) => x.buffer === firstArray.buffer),
      'a later output of the same length reuses the recycled array',
    );
    // the recycled array was overwritten whole: the product is the same as before
    assert.deepEqual(Array.from(be.f32(third, 'test', 'third')), Array.from(want));
    tf.dispose([second, third]);
  });

  it('never recycles an array a caller read out (dataSync, data)', async () => {
    const read = product(a, b);
    const values = read.dataSync();
    const copy = Float32Array.from(values);
    read.dispose();
    const asyncRead = product(a, b);
    const asyncValues = await asyncRead.data();
    const asyncCopy = Float32Array.from(asyncValues as Float32Array);
    asyncRead.dispose();
    const later = otherProducts(a, b);
    assert.deepEqual(Array.from(values), Array.from(copy));
    assert.deepEqual(Array.from(asyncValues), Array.from(asyncCopy));
    for (const t of later) {
      assert.notEqual(be.f32(t, 'test', 'later').buffer, values.buffer);
      assert.notEqual(be.f32(t, 'test', 'later').buffer, (asyncValues as Float32Array).buffer);
    }
    tf.dispose(later);
  });

  it('never recycles an array another tensor views (the cpu StridedSlice returns a subarray)', () => {
    const full = product(a, b);
    const rows = tf.stridedSlice(full, [3, 0], [8, 29], [1, 1]); // contiguous rows: a view of full's array
    assert.equal(be.f32(rows, 'test', 'rows').buffer, be.f32(full, 'test', 'full').buffer);
    const want = Float32Array.from(be.f32(rows, 'test', 'rows'));
    full.dispose();
    const later = otherProducts(a, b);
    assert.deepEqual(Array.from(rows.dataSync()), Array.from(want));
    tf.dispose([rows, ...later]);
  });

  it('never recycles an array the caller gave to tf.tensor', () => {
    const mine = rand(33 * 29);
    const copy = Float32Array.from(mine);
    tf.tensor2d(mine, [33, 29]).dispose();
    const later = otherProducts(a, b);
    assert.deepEqual(Array.from(mine), Array.from(copy));
    tf.dispose(later);
  });

  it('holds at most its limit: a quarter of the machine, or SIGLIP2_NATIVE_POOL_MB (0: off)', () => {
    const pool = new OutputPool(1000);
    pool.give(new Float32Array(100)); // 400 bytes
    pool.give(new Float32Array(100));
    assert.equal(pool.heldBytes, 800);
    const newer = new Float32Array(100);
    pool.take(100);
    pool.give(newer); // the newest of the two 100s
    pool.give(new Float32Array(60)); // 1040 bytes would exceed the limit: the oldest array goes
    assert.equal(pool.heldBytes, 640);
    assert.equal(pool.take(100), newer);
    assert.equal(pool.take(100), undefined);
    assert.equal(pool.take(60)?.length, 60);
    pool.give(new Float32Array(1000)); // larger than the whole limit: not kept
    assert.equal(pool.heldBytes, 0);
    assert.equal(poolLimitBytes({}, 24 * 2 ** 30), 6 * 2 ** 30); // a quarter of the machine
    assert.equal(poolLimitBytes({}, 1 * 2 ** 30), 512 * 2 ** 20); // at least 512 MiB
    assert.equal(poolLimitBytes({ SIGLIP2_NATIVE_POOL_MB: '0' }), 0);
    assert.equal(poolLimitBytes({ SIGLIP2_NATIVE_POOL_MB: '64' }), 64 * 2 ** 20);
    assert.throws(
      () => poolLimitBytes({ SIGLIP2_NATIVE_POOL_MB: 'lots' }),
      /SIGLIP2_NATIVE_POOL_MB/,
    );
  });

  it('keeps tensor counts flat over many recycled forward products', () => {
    const before = tf.memory().numTensors;
    for (let i = 0; i < 200; i++) {
      tf.tidy(() => tf.matMul(product(a, b), tf.ones([29, 7])).add(1)).dispose();
    }
    assert.equal(tf.memory().numTensors, before);
    assert.ok(be.pooledBytes <= poolLimitBytes());
  });
});
