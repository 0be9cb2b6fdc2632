import * as tf from '@tensorflow/tfjs';

/** What a fused linear layer applies after `x @ kernel + bias`. */
export interface FusedLinearOptions {
  activation?: 'gelu_tanh';
  residual?: tf.Tensor;
}

/** A linear layer's kernel `[in, out]` and bias `[out]`. */
export interface LinearWeights {
  kernel: tf.Tensor2D;
  bias: tf.Tensor1D;
}

/** A LayerNorm's scale and offset. */
export interface LayerNormWeights {
  gamma: tf.Tensor1D;
  beta: tf.Tensor1D;
}

/** Every weight of one SigLIP encoder layer, named after the checkpoint's modules. */
export interface EncoderLayerWeights {
  layerNorm1: LayerNormWeights;
  qProj: LinearWeights;
  kProj: LinearWeights;
  vProj: LinearWeights;
  outProj: LinearWeights;
  layerNorm2: LayerNormWeights;
  fc1: LinearWeights;
  fc2: LinearWeights;
}

/** The sizes an encoder layer's arithmetic needs besides its weights. */
export interface EncoderLayerOptions {
  numHeads: number;
  layerNormEps: number;
  /** `[B, N]`, 1 attend, 0 padding */
  keyMask?: tf.Tensor;
}

/**
 * `x @ op(kernel) (+ bias) + u @ op(v)` for 2-D operands, where `op` transposes when asked: a product plus a
 * low-rank one (`u` `[m, r]` with a small r), both accumulated into one output. LoRA's forward pass
 * `x W + b + (x A)(B scale)` and its input gradient `dy W^T + (dy (B scale)^T) A^T` are this. It has no gradient
 * and is called only where the tape is off (inside an op's forward or backward function); it must return
 * undefined where the tape records.
 */
export type ProductPlusLowRank = (
  x: tf.Tensor2D,
  kernel: tf.Tensor2D,
  transposeKernel: boolean,
  bias: tf.Tensor1D | undefined,
  u: tf.Tensor2D,
  v: tf.Tensor2D,
  transposeV: boolean,
) => tf.Tensor2D | undefined;

/**
 * Replacements a backend can give for the layer arithmetic of this folder (the `native` backend registers
 * C++ versions). Each must compute what the JavaScript version computes, with its gradient; it may return
 * undefined to decline an input (the JavaScript version then runs).
 */
export interface LayerKernelOverrides {
  layerNorm?(
    x: tf.Tensor,
    gamma: tf.Tensor1D,
    beta: tf.Tensor1D,
    epsilon: number,
  ): tf.Tensor | undefined;
  geluTanh?(x: tf.Tensor): tf.Tensor | undefined;
  /** q `[B, Nq, D]`, k and v `[B, Nk, D]`, keyMask `[B, Nk]` (1 attend, 0 padding); returns `[B, Nq, D]`. */
  attention?(
    q: tf.Tensor,
    k: tf.Tensor,
    v: tf.Tensor,
    numHeads: number,
    keyMask?: tf.Tensor,
  ): tf.Tensor | undefined;
  /**
   * `act(x @ kernel + bias) (+ residual)` over the last axis of `x` as one fused op, for inference: it must return
   * undefined while gradients are being recorded (the unfused ops then run, with their gradients). `residual` has
   * the output's shape and comes only with no activation.
   */
  fusedLinear?(
    x: tf.Tensor,
    kernel: tf.Tensor2D,
    bias: tf.Tensor1D | undefined,
    options: FusedLinearOptions,
  ): tf.Tensor | undefined;
  /**
   * A whole pre-LN encoder layer with GELU-tanh, `h = x + out_proj(attn(ln1(x))); h + fc2(gelu(fc1(ln2(h))))`, as one
   * op, for inference: like fusedLinear it must return undefined while gradients are being recorded.
   */
  encoderLayer?(
    x: tf.Tensor,
    weights: EncoderLayerWeights,
    options: EncoderLayerOptions,
  ): tf.Tensor | undefined;
  /** See `ProductPlusLowRank`. */
  productPlusLowRank?: ProductPlusLowRank;
  /** True when matMuls with transpose flags are as fast as plain ones (gradients then skip explicit transposes). */
  fastTransposedMatMul?: boolean;
}

const byBackend = new Map<string, LayerKernelOverrides>();

/** Sets (or with undefined removes) the replacements used while `backend` is the active TF.js backend. */
export function setLayerKernelOverrides(
  backend: string,
  overrides: LayerKernelOverrides | undefined,
): void {
  if (overrides === undefined) byBackend.delete(backend);
  else byBackend.set(backend, overrides);
}

/** The replacements of the active backend, if it has any. */
export function layerKernelOverrides(): LayerKernelOverrides | undefined {
  if (byBackend.size === 0) return undefined;
  return byBackend.get(tf.getBackend());
}
