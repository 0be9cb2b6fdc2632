import * as tf from '@tensorflow/tfjs';

type SaveFn = (tensors: tf.Tensor[]) => void;

/** The part of TF.js's engine that `tf.customGrad` itself is built on (public in JS, private in the typings). */
interface KernelFuncEngine {
  runKernelFunc(params: {
    forwardFunc: (backend: unknown, save: SaveFn) => tf.Tensor;
    backwardsFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => Record<string, () => tf.Tensor>;
    inputs: tf.NamedTensorMap;
  }): tf.Tensor;
}

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
  const engine = tf.engine() as unknown as KernelFuncEngine;
  return engine.runKernelFunc({
    forwardFunc: (_backend, save) => forward(save),
    backwardsFunc: backward,
    inputs,
  });
}
