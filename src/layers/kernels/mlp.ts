import * as tf from '@tensorflow/tfjs';
import { activation, type HiddenAct } from './activations.js';
import { linear } from './linear.js';

/** Weights of a two-layer MLP (`fc1`, `fc2`), kernels `[in, out]`. */
export interface MlpWeights {
  fc1Kernel: tf.Tensor2D;
  fc1Bias: tf.Tensor1D;
  fc2Kernel: tf.Tensor2D;
  fc2Bias: tf.Tensor1D;
}

/** The SigLIP MLP: `fc2(act(fc1(x)))`. The one place its arithmetic lives. */
export function mlp(x: tf.Tensor, w: MlpWeights, act: HiddenAct): tf.Tensor {
  return tf.tidy(() =>
    linear(activation(act, linear(x, w.fc1Kernel, w.fc1Bias)), w.fc2Kernel, w.fc2Bias),
  );
}
