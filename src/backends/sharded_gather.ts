/**
 * Row-sharded embedding tables, for tables larger than WebGPU's storage-buffer binding limit (the 256000 x 1152
 * token table of SigLIP 2 is 1.18 GB; lavapipe binds at most 128 MiB, Chromium 1 GiB). A plain tf.gather from
 * such a table on webgpu returns zeros without an error.
 */
import * as tf from '@tensorflow/tfjs';
import { assertFitsBinding, bindingLimit } from './binding.js';

/** Default shard size when no binding limit applies (off webgpu): 128 MiB, lavapipe's limit. */
export const DEFAULT_SHARD_BYTES = 128 * 2 ** 20;

/**
 * Splits a row-major [rows, cols] float32 table into row shards of at most `maxShardBytes` bytes each
 * (default: the active binding limit, else 128 MiB), each a separate tensor made from the CPU data, so no tensor
 * over the limit is ever created on the device. Dispose the shards when done.
 */
export function shardTable(
  data: Float32Array,
  shape: readonly [number, number],
  maxShardBytes: number = bindingLimit() ?? DEFAULT_SHARD_BYTES,
  name = 'table',
): tf.Tensor2D[] {
  const [rows, cols] = shape;
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows <= 0 || cols <= 0) {
    throw new Error(
      `shardTable: '${name}' shape must be two positive integers, got [${shape.join(', ')}]`,
    );
  }
  if (data.length !== rows * cols) {
    throw new Error(
      `shardTable: '${name}' has ${data.length} values, shape [${rows}, ${cols}] needs ${rows * cols}`,
    );
  }
  const rowsPerShard = Math.floor(maxShardBytes / (cols * 4));
  if (rowsPerShard < 1) {
    throw new Error(
      `shardTable: one row of '${name}' (${cols * 4} bytes) exceeds maxShardBytes ${maxShardBytes}`,
    );
  }
  const shards: tf.Tensor2D[] = [];
  for (let start = 0; start < rows; start += rowsPerShard) {
    const n = Math.min(rowsPerShard, rows - start);
    shards.push(tf.tensor2d(data.subarray(start * cols, (start + n) * cols), [n, cols], 'float32'));
  }
  return shards;
}

/**
 * Gathers rows of a table stored as row shards (shard i holds the rows that follow those of shard i-1), i.e.
 * tf.gather(concat(shards), ids) without ever binding more than one shard. `ids` of any shape gives a result of
 * shape [...ids.shape, cols]. Ids given as numbers are range-checked; ids given as a tensor are not (an id out of
 * range gives a row of zeros). Each shard is checked against the active binding limit.
 */
export function shardedGather(
  shards: readonly tf.Tensor2D[],
  ids: tf.Tensor | readonly number[] | Int32Array,
): tf.Tensor {
  if (shards.length === 0) throw new Error('shardedGather: no shards given');
  const cols = shards[0].shape[1];
  let total = 0;
  shards.forEach((s, i) => {
    if (s.rank !== 2 || s.shape[1] !== cols) {
      throw new Error(
        `shardedGather: shard ${i} has shape [${s.shape.join(', ')}], expected [rows, ${cols}]`,
      );
    }
    assertFitsBinding(`shardedGather shard ${i}`, s.shape);
    total += s.shape[0];
  });
  if (!(ids instanceof tf.Tensor)) {
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= total) {
        throw new Error(`shardedGather: id ${id} is out of range for a table of ${total} rows`);
      }
    }
  }
  return tf.tidy(() => {
    const idTensor = ids instanceof tf.Tensor ? ids.toInt() : tf.tensor1d(Array.from(ids), 'int32');
    const flat = idTensor.reshape([-1]);
    if (shards.length === 1) return tf.gather(shards[0], flat).reshape([...idTensor.shape, cols]);
    let out: tf.Tensor | undefined;
    let offset = 0;
    for (const shard of shards) {
      const rows = shard.shape[0];
      const local = flat.sub(tf.scalar(offset, 'int32'));
      const inShard = tf.logicalAnd(local.greaterEqual(0), local.less(rows));
      const rowsOut = tf.gather(shard, tf.clipByValue(local, 0, rows - 1));
      // where(), not a multiply by the mask: a non-finite value in a row read for another shard must not leak.
      const masked = tf.where(inShard.expandDims(1), rowsOut, tf.zerosLike(rowsOut));
      out = out === undefined ? masked : out.add(masked);
      offset += rows;
    }
    return (out as tf.Tensor).reshape([...idTensor.shape, cols]);
  });
}
