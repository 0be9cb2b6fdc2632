import type * as tf from '@tensorflow/tfjs';
import { runKernelFunc } from '../../internals/tfjs.js';

type SaveFn = (tensors: tf.Tensor[]) => void;

/**
 * An op with a hand-written gradient whose per-input gradients are computed only when asked for. `tf.customGrad`
 * computes the gradient of every input eagerly; the engine asks only for inputs on the path to what is being
 * differentiated, so with this a frozen weight (LoRA, frozen layers) costs neither the matMul of its gradient nor
 * the memory. `forward` runs with the tape off; what it passes to `save` reaches `backward`.
 */
export function opWithLazyGrads(
  inputs: tf.NamedTensorMap,
  forward: (save: SaveFn) => tf.Tensor,
  backward: (dy: tf.Tensor, saved: tf.Tensor[]) => Record<string, () => tf.Tensor>,
): tf.Tensor {
  return runKernelFunc(inputs, forward, backward);
}
