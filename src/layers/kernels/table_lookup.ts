import * as tf from '@tensorflow/tfjs';
import { bindingLimit } from '../../backends/binding.js';
import { opWithLazyGrads } from './lazy_grad.js';

/**
 * The gradient of a row lookup `table[ids]` with respect to the table: every incoming row of `dy` is added into
 * the table row its id names (a scatter-add), one shard of `shardRows[i]` rows at a time, so no intermediate is
 * larger than the biggest shard plus one row. Ids outside `[0, sum(shardRows))` contribute nothing (their lookup
 * gives a row of zeros). Returns `[sum(shardRows), cols]`.
 *
 * The result is one tensor of the table's shape (what the optimizer updates); on webgpu, a table gradient over the
 * storage-buffer binding limit would read as zeros, so this throws there instead, naming the table.
 */
export function tableGradient(
  dy: tf.Tensor,
  ids: tf.Tensor,
  shardRows: readonly number[],
  name: string,
): tf.Tensor2D {
  const cols = dy.shape[dy.rank - 1];
  const rows = shardRows.reduce((a, b) => a + b, 0);
  const limit = bindingLimit();
  if (limit !== undefined && rows * cols * 4 > limit) {
    throw new Error(
      `the gradient of '${name}' [${rows}, ${cols}] is ${rows * cols * 4} bytes, over the WebGPU storage-buffer ` +
        `binding limit of ${limit} bytes, so it cannot be one tensor on webgpu: freeze the text embeddings ` +
        `(trainableParams(model, { embeddings: ['text'] })) or train on the wasm or cpu backend`,
    );
  }
  return tf.tidy(() => {
    const flatDy = dy.reshape([-1, cols]);
    const flatIds = ids.toInt().reshape([-1]) as tf.Tensor1D;
    const parts: tf.Tensor[] = [];
    let offset = 0;
    for (const n of shardRows) {
      const local = flatIds.sub(tf.scalar(offset, 'int32'));
      const inShard = tf.logicalAnd(local.greaterEqual(0), local.less(n));
      // Ids of other shards land in one extra segment, dropped below.
      const segment = tf.where(inShard, local, tf.fill(local.shape, n, 'int32')) as tf.Tensor1D;
      parts.push(tf.unsortedSegmentSum(flatDy, segment, n + 1).slice([0, 0], [n, cols]));
      offset += n;
    }
    return (parts.length === 1 ? parts[0] : tf.concat(parts, 0)) as tf.Tensor2D;
  });
}

/**
 * `lookup()`, the rows of `table` at `ids` computed by other means than reading `table` on the device (from row
 * shards, or copied in JavaScript), recorded as one op whose gradient with respect to `table` is `tableGradient`
 * (and zero with respect to the ids), so training reaches the table as it does through `tf.gather`. `lookup` runs
 * with the tape off; the table tensor itself is only an anchor for the gradient and is never bound.
 */
export function lookupWithTableGradient(
  table: tf.Tensor2D,
  ids: tf.Tensor,
  lookup: () => tf.Tensor,
  shardRows: readonly number[],
  name: string,
): tf.Tensor {
  const rows = shardRows.reduce((a, b) => a + b, 0);
  if (rows !== table.shape[0]) {
    throw new Error(
      `lookupWithTableGradient: shards of '${name}' hold ${rows} rows, the table has ${table.shape[0]}`,
    );
  }
  return opWithLazyGrads(
    { table, ids },
    (save) => {
      save([ids]);
      return lookup();
    },
    (dy, saved) => ({
      table: () => tableGradient(dy, saved[0], shardRows, name),
      ids: () => tf.zerosLike(saved[0]),
    }),
  );
}
