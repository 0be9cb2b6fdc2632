import * as tf from '@tensorflow/tfjs';
import { bindingLimit } from '../../backends/binding.js';
import { opWithLazyGrads } from './lazy_grad.js';

/**
 * The gradient of a row lookup `table[ids]` with respect to a `[rows, cols]` table: every incoming row of `dy` is
 * added into the table row its id names (a scatter-add, as TF.js's own gradient of `tf.gather`). Ids outside
 * `[0, rows)` contribute nothing (their lookup gives a row of zeros). Returns `[rows, cols]`.
 *
 * One scatter-add over the whole table, not one per shard: the result is one tensor of the table's shape either
 * way (what the optimizer updates), and per-shard pieces would need a concatenation holding the gradient twice. On
 * webgpu a table gradient over the storage-buffer binding limit would read as zeros, so this throws there instead,
 * naming the table.
 */
export function tableGradient(
  dy: tf.Tensor,
  ids: tf.Tensor,
  rows: number,
  name: string,
): tf.Tensor2D {
  const cols = dy.shape[dy.rank - 1];
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
    const valid = tf.logicalAnd(flatIds.greaterEqual(0), flatIds.less(rows));
    // where(), not a multiply by the mask: a non-finite incoming row of an invalid id must not leak.
    const rowsIn = tf.where(valid.expandDims(1), flatDy, tf.zerosLike(flatDy));
    const segment = tf.clipByValue(flatIds, 0, rows - 1) as tf.Tensor1D;
    return tf.unsortedSegmentSum(rowsIn, segment, rows) as tf.Tensor2D;
  });
}

/**
 * `lookup()`, the rows of `table` at `ids` computed by other means than reading `table` on the device (from row
 * shards of `shardRows[i]` rows, or copied in JavaScript), recorded as one op whose gradient with respect to
 * `table` is `tableGradient` (and zero with respect to the ids), so training reaches the table as it does through
 * `tf.gather`. `lookup` runs with the tape off; the table tensor itself is only an anchor for the gradient and is
 * never bound. `shardRows` must add up to the table's rows.
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
      table: () => tableGradient(dy, saved[0], rows, name),
      ids: () => tf.zerosLike(saved[0]),
    }),
  );
}
