import * as tf from '@tensorflow/tfjs';
import { TANH_GELUS, activation, type HiddenAct } from './activations.js';
import { type LinearOptions, linear, linearWithResidual } from './linear.js';
import { layerKernelOverrides } from './overrides.js';

/** Weights of a two-layer MLP (`fc1`, `fc2`), kernels `[in, out]`. */
export interface MlpWeights {
  fc1Kernel: tf.Tensor2D;
  fc1Bias: tf.Tensor1D;
  fc2Kernel: tf.Tensor2D;
  fc2Bias: tf.Tensor1D;
}

/** `act(fc1(x))`, as one fused op where the backend has one for GELU-tanh (the native backend at inference). */
function hidden(x: tf.Tensor, w: MlpWeights, act: HiddenAct): tf.Tensor {
  const fused = TANH_GELUS.has(act)
    ? layerKernelOverrides()?.fusedLinear?.(x, w.fc1Kernel, w.fc1Bias, { activation: 'gelu_tanh' })
    : undefined;
  return fused ?? activation(act, linear(x, w.fc1Kernel, w.fc1Bias));
}

/**
 * The SigLIP MLP: `fc2(act(fc1(x)))`, or with `residual`, `residual + fc2(act(fc1(x)))` (the encoder layer's
 * second block; the add may be fused into fc2). The one place its arithmetic lives. `options` apply to fc2.
 */
export function mlp(
  x: tf.Tensor,
  w: MlpWeights,
  act: HiddenAct,
  residual?: tf.Tensor,
  options: LinearOptions = {},
): tf.Tensor {
  return tf.tidy(() => {
    const h = hidden(x, w, act);
    return residual === undefined
      ? linear(h, w.fc2Kernel, w.fc2Bias, undefined, options)
      : linearWithResidual(h, w.fc2Kernel, w.fc2Bias, residual, undefined, options);
  });
}
