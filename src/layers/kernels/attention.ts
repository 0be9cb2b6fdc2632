import * as tf from '@tensorflow/tfjs';
import { chain } from './chain.js';
import { layerKernelOverrides } from './overrides.js';
import { ensureWasmKernels } from './wasm_kernels.js';

/** The additive value a masked key gets: the float32 minimum, as Hugging Face uses. */
export const MASKED_SCORE = -3.4028234663852886e38;

type SaveFn = (tensors: tf.Tensor[]) => void;

/** Swaps the last two axes of a rank-4 tensor. */
const swapLast = (t: tf.Tensor) => t.transpose([0, 1, 3, 2]);

/**
 * `a @ b` over rank-4 tensors `[B, H, M, K] x [B, H, K, N]`. The wasm backend hands a matMul with a batch of one
 * to XNNPACK but loops naively over larger batches (about 2 GFLOP/s for so400m's attention, half the time of a
 * forward pass), so there each (batch, head) pair is multiplied on its own; other backends take the batch at once.
 */
function matMul4d(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  if (tf.getBackend() !== 'wasm') return tf.matMul(a as tf.Tensor4D, b as tf.Tensor4D);
  ensureWasmKernels();
  const [batch, heads, m, k] = a.shape as [number, number, number, number];
  const n = b.shape[3] as number;
  const as = tf.unstack(a.reshape([batch * heads, m, k])) as tf.Tensor2D[];
  const bs = tf.unstack(b.reshape([batch * heads, k, n])) as tf.Tensor2D[];
  const products = as.map((x, i) => {
    const p = tf.matMul(x, bs[i]);
    tf.dispose([x, bs[i]]);
    return p;
  });
  const out = tf.stack(products);
  tf.dispose(products);
  return out.reshape([batch, heads, m, n]);
}

/**
 * Batched `a @ b` (rank 4) whose gradient transposes explicitly: TF.js's own gradient multiplies with
 * transposeA/transposeB flags, which the wasm backend runs many times slower than a plain matMul.
 */
const batchMatMul = tf.customGrad((...args: (tf.Tensor | SaveFn)[]) => {
  const [a, b, save] = args as [tf.Tensor4D, tf.Tensor4D, SaveFn];
  save([a, b]);
  return {
    value: matMul4d(a, b),
    // tidy: what a gradient function leaves behind lives until the whole backward pass ends.
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
      tf.tidy(() => {
        const [sa, sb] = saved;
        return [matMul4d(dy, swapLast(sb)), matMul4d(swapLast(sa), dy)];
      }),
  };
});

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
  const replaced = layerKernelOverrides()?.attention?.(q, k, v, numHeads, keyMask);
  if (replaced !== undefined) return replaced;
  return tf.tidy(() => {
    const [b, nq, dim] = q.shape as [number, number, number];
    const headDim = dim / numHeads;
    const qh = splitHeads(q, numHeads);
    // Keys as [B, H, d, Nk] straight from the reshape: a plain matMul, no transposeB flag (slow on wasm).
    const [, nk] = k.shape as [number, number, number];
    const khT = k.reshape([b, nk, numHeads, headDim]).transpose([0, 2, 3, 1]);
    const vh = splitHeads(v, numHeads);
    // Intermediates of the size of the attention map are freed as soon as they are used (see `chain`).
    const additive = keyMask
      ? tf.sub(1, keyMask.toFloat()).mul(MASKED_SCORE).reshape([b, 1, 1, nk])
      : undefined;
    const raw = batchMatMul(qh, khT);
    tf.dispose([qh, khT]);
    const scaled = raw.mul(headDim ** -0.5);
    raw.dispose();
    const probs = chain(
      scaled,
      (u) => (additive ? u.add(additive) : u),
      (u) => tf.softmax(u, -1),
    );
    scaled.dispose();
    const out = batchMatMul(probs, vh);
    tf.dispose([probs, vh]);
    const merged = chain(
      out,
      (u) => u.transpose([0, 2, 1, 3]),
      (u) => u.reshape([b, nq, dim]),
    );
    out.dispose();
    return merged;
  });
}
