import * as tf from '@tensorflow/tfjs';
import { liveTensorBytes, recordingGradients } from '../../internals/tfjs.js';
import { opWithLazyGrads } from './lazy_grad.js';
import { layerKernelOverrides } from './overrides.js';

// The gradient TF.js derives for matMul multiplies with transposeA/transposeB flags, which the wasm backend runs
// 8-27x slower than a plain matMul (measured here on [392,768]^T x [392,3072]: 5.1 s with the transposeA flag,
// 0.19 s after an explicit transpose). This gradient transposes explicitly instead; the numbers are the same.

let packCacheLimitBytes = 2 * 2 ** 30;

/**
 * Tensor bytes above which wasm forward passes stop caching packed kernels (see `forwardKernel`; default 2 GiB).
 * Lower it to trade a little speed for heap room; 0 never caches.
 */
export function setWasmPackCacheLimit(bytes: number): void {
  if (!(bytes >= 0)) throw new Error(`setWasmPackCacheLimit: bytes must be >= 0, got ${bytes}`);
  packCacheLimitBytes = bytes;
}

/**
 * The kernel to multiply by. TF.js's wasm backend packs an XNNPACK operator for every right-hand tensor of a
 * matMul and keeps it until that tensor is disposed: for weights, forever, a second copy of every kernel. That
 * saves re-packing at inference, but doubles the weights inside wasm's 4 GiB heap: so400m's text tower (2.8 GB of
 * weights) ran out of heap at its first forward pass, and its vision tower under a gradient held 3.4 GB before any
 * activation. So while gradients are being recorded, or once more than the pack-cache limit of tensors
 * are alive, the forward pass multiplies by a transient copy whose packed operator is freed right after (the tape
 * still saves the kernel itself). The numbers are the same.
 */
function forwardKernel(kernel: tf.Tensor2D): tf.Tensor2D {
  if (tf.getBackend() !== 'wasm') return kernel;
  if (!recordingGradients() && liveTensorBytes() <= packCacheLimitBytes) return kernel;
  return tf.mul(kernel, 1);
}

/** `op(a) @ op(b)` with explicit transposes (what the wasm backend runs fast). */
function explicitMatMul(a: tf.Tensor2D, b: tf.Tensor2D, ta: boolean, tb: boolean): tf.Tensor2D {
  return tf.matMul(ta ? a.transpose() : a, tb ? b.transpose() : b);
}

/** `op(a) @ op(b)` with transpose flags (no copies, where the backend's matMul reads transposed operands). */
function flagMatMul(a: tf.Tensor2D, b: tf.Tensor2D, ta: boolean, tb: boolean): tf.Tensor2D {
  return tf.matMul(a, b, ta, tb);
}

/** The backend's better way to multiply transposed operands: with flags where they are fast, else explicitly. */
function transposingMatMul(): typeof flagMatMul {
  return layerKernelOverrides()?.fastTransposedMatMul ? flagMatMul : explicitMatMul;
}

/** A low-rank update `(x A) B * scale` added to a linear layer's output (LoRA; A `[in, r]`, B `[r, out]`). */
export interface LowRankUpdate {
  a: tf.Tensor2D;
  b: tf.Tensor2D;
  scale: number;
}

/** How a linear op is used. */
export interface LinearOptions {
  /**
   * Only the op's gradients are used, never its output: the last product of a block recomputed for its backward
   * pass (gradient checkpointing), whose output is thrown away. The product is then not computed and the output
   * holds zeros; the gradients are those of the real product, which need only the op's inputs.
   */
  outputUnused?: boolean;
}

/**
 * `x @ op(b) (+ bias) + u @ op(v)`: a product plus a low-rank one (`u` `[m, r]`). The backend's one op where it
 * has one (native: both products write one output; this runs where the tape is off, inside another op), else two
 * matMuls and an add.
 */
function productPlusLowRank(
  x: tf.Tensor2D,
  b: tf.Tensor2D,
  transposeB: boolean,
  bias: tf.Tensor1D | undefined,
  u: tf.Tensor2D,
  v: tf.Tensor2D,
  transposeV: boolean,
): tf.Tensor2D {
  const fused = layerKernelOverrides()?.productPlusLowRank?.(
    x,
    b,
    transposeB,
    bias,
    u,
    v,
    transposeV,
  );
  if (fused !== undefined) return fused;
  return tf.tidy(() => {
    const mm = transposingMatMul();
    const y = bias ? tf.fused.matMul({ a: x, b, bias, transposeB }) : mm(x, b, false, transposeB);
    return y.add(mm(u, v, false, transposeV));
  });
}

/**
 * `x @ kernel (+ bias) (+ (x A) B * scale)` for 2-D `x`, as one op. Its gradient is computed per input and only
 * when needed (a frozen kernel gets no `x^T dy`), keeps only `x`, the weights and the rank-r `x A` for the backward
 * pass (the low-rank branch as separate ops kept three output-sized tensors per projection), and transposes
 * explicitly: the wasm backend runs matMuls with transpose flags 8-27x slower. The scale is applied to the `[r, out]`
 * B, never to an output-sized tensor; the low-rank terms are accumulated onto the big products where the backend
 * can (`productPlusLowRank`); `dy B^T` is computed once for the gradients of x and A.
 */
function linear2d(
  x: tf.Tensor2D,
  kernel: tf.Tensor2D,
  bias?: tf.Tensor1D,
  lora?: LowRankUpdate,
  options: LinearOptions = {},
): tf.Tensor2D {
  const inputs: tf.NamedTensorMap = { x, kernel };
  if (bias) inputs.bias = bias;
  if (lora) {
    inputs.loraA = lora.a;
    inputs.loraB = lora.b;
  }
  return opWithLazyGrads(
    inputs,
    (save) => {
      if (options.outputUnused) {
        save(lora ? [x, kernel, lora.a, lora.b] : [x, kernel]);
        return tf.zeros([x.shape[0], kernel.shape[1]]);
      }
      const k = forwardKernel(kernel);
      let y: tf.Tensor;
      if (lora) {
        // the forward function runs in a tidy: x A and B scale (rank-r) are freed with it
        const xa = tf.matMul(x, lora.a) as tf.Tensor2D;
        save([x, kernel, lora.a, lora.b, xa]);
        y = productPlusLowRank(x, k, false, bias, xa, lora.b.mul(lora.scale), false);
      } else {
        save([x, kernel]);
        y = bias ? tf.fused.matMul({ a: x, b: k, bias }) : tf.matMul(x, k);
      }
      if (k !== kernel) k.dispose();
      return y;
    },
    (dy, saved) => {
      const [sx, sk, sa, sb, sxa] = saved as tf.Tensor2D[];
      const d = dy as tf.Tensor2D;
      const mm = transposingMatMul();
      const grads: Record<string, () => tf.Tensor> = {
        x: () => mm(d, sk, false, true),
        kernel: () => mm(sx, d, true, false),
      };
      if (bias) grads.bias = () => d.sum(0);
      if (lora) {
        const { scale } = lora;
        // dy (B scale)^T, the gradient reaching x A: x's and A's gradients both use it. Computed here, in the
        // backward pass's scope (each gradient below runs in its own tidy), it lives until that pass ends.
        const dxa = mm(d, tf.tidy(() => sb.mul(scale)) as tf.Tensor2D, false, true);
        grads.x = () => productPlusLowRank(d, sk, true, undefined, dxa, sa, true);
        grads.loraA = () => mm(sx, dxa, true, false);
        grads.loraB = () =>
          mm((sxa ?? tf.matMul(sx, sa)).mul(scale) as tf.Tensor2D, d, true, false);
      }
      return grads;
    },
  ) as tf.Tensor2D;
}

/**
 * `x @ kernel + bias` (and an optional low-rank update) over the last axis of a tensor of any rank. The kernel is
 * `[in, out]` (the transpose of a PyTorch `nn.Linear` weight). Flattening to 2-D lets every backend use its fused
 * matMul + bias kernel.
 */
export function linear(
  x: tf.Tensor,
  kernel: tf.Tensor2D,
  bias?: tf.Tensor1D,
  lora?: LowRankUpdate,
  options: LinearOptions = {},
): tf.Tensor {
  return tf.tidy(() => {
    const inDim = x.shape[x.shape.length - 1];
    const lead = x.shape.slice(0, -1);
    const flat = x.reshape([-1, inDim]) as tf.Tensor2D;
    const y = linear2d(flat, kernel, bias, lora, options);
    return y.reshape([...lead, kernel.shape[1]]);
  });
}

/**
 * `residual + (x @ kernel + bias (+ low-rank update))`: a linear layer and the residual add after it. Where the
 * backend fuses the add into the matMul (the native backend, at inference) it runs as one op; elsewhere, and under
 * a gradient, it is `residual.add(linear(...))`.
 */
export function linearWithResidual(
  x: tf.Tensor,
  kernel: tf.Tensor2D,
  bias: tf.Tensor1D | undefined,
  residual: tf.Tensor,
  lora?: LowRankUpdate,
  options: LinearOptions = {},
): tf.Tensor {
  if (lora === undefined && !options.outputUnused) {
    const fused = layerKernelOverrides()?.fusedLinear?.(x, kernel, bias, { residual });
    if (fused !== undefined) return fused;
  }
  return tf.tidy(() => residual.add(linear(x, kernel, bias, lora, options)));
}
