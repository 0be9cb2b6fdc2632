import * as tf from '@tensorflow/tfjs';

/** The additive value a masked key gets: the float32 minimum, as Hugging Face uses. */
export const MASKED_SCORE = -3.4028234663852886e38;

/** `[B, N, H*d] -> [B, H, N, d]` */
function splitHeads(x: tf.Tensor, numHeads: number): tf.Tensor4D {
  const [b, n, dim] = x.shape as [number, number, number];
  return x.reshape([b, n, numHeads, dim / numHeads]).transpose([0, 2, 1, 3]) as tf.Tensor4D;
}

/**
 * Scaled dot-product attention over heads: `softmax(q k^T * d^-0.5 + mask) v`.
 *
 * q: `[B, Nq, D]`, k and v: `[B, Nk, D]`, keyMask: optional `[B, Nk]` with 1 for keys to attend to and 0 for
 * padding (it becomes the additive float32-minimum mask of the reference). Returns `[B, Nq, D]`.
 * This is the one place the attention arithmetic lives, so a faster kernel can replace it.
 */
export function scaledDotProductAttention(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  numHeads: number,
  keyMask?: tf.Tensor,
): tf.Tensor {
  return tf.tidy(() => {
    const [b, nq, dim] = q.shape as [number, number, number];
    const headDim = dim / numHeads;
    const qh = splitHeads(q, numHeads);
    const kh = splitHeads(k, numHeads);
    const vh = splitHeads(v, numHeads);
    let scores = tf.matMul(qh, kh, false, true).mul(headDim ** -0.5);
    if (keyMask) {
      const additive = tf.sub(1, keyMask.toFloat()).mul(MASKED_SCORE);
      scores = scores.add(additive.reshape([b, 1, 1, k.shape[1] as number]));
    }
    const probs = tf.softmax(scores, -1);
    const out = tf.matMul(probs, vh);
    return out.transpose([0, 2, 1, 3]).reshape([b, nq, dim]);
  });
}
