import * as tf from '@tensorflow/tfjs';
import { nestedGradients, tapeIsOn } from '../../internals/tfjs.js';

type SaveFn = (tensors: tf.Tensor[]) => void;

let gradientTargets: ReadonlySet<number> | undefined;

/**
 * Runs `fn` with `variables` as the ones being differentiated, so a recomputed block differentiates only those
 * (the frozen base weights under LoRA need no gradient). Without it, every variable marked trainable counts.
 */
export function withGradientTargets<T>(variables: readonly tf.Variable[], fn: () => T): T {
  const previous = gradientTargets;
  gradientTargets = new Set(variables.map((v) => v.id));
  try {
    return fn();
  } finally {
    gradientTargets = previous;
  }
}

function zerosFloat(t: tf.Tensor): tf.Tensor {
  return tf.zeros(t.shape, 'float32');
}

/**
 * `fn(inputs)` whose activations are not kept for the backward pass but recomputed there (gradient
 * checkpointing): the tape holds only the block's inputs, and the block's own activations and gradients live
 * only while its backward runs. Gradients flow to the float inputs and to those of `variables` being
 * differentiated (see `withGradientTargets`); `fn` may read any other variable as a constant. Outside a gradient
 * computation it is just `fn(inputs)`. `fn` must be deterministic (SigLIP has no dropout). The block's output
 * must not itself be differentiated against: its incoming gradient is released once the block has used it.
 * `forGradients`, when given, is what the backward pass recomputes instead of `fn`: ops with `fn`'s gradients
 * whose output values may differ (the recomputed output is thrown away), so it can skip work only the output
 * needs (`SiglipEncoderLayer.callForGradients`).
 */
export function recomputeInBackward(
  fn: (inputs: tf.Tensor[]) => tf.Tensor,
  inputs: tf.Tensor[],
  variables: readonly tf.Variable[],
  forGradients: (inputs: tf.Tensor[]) => tf.Tensor = fn,
): tf.Tensor {
  if (!tapeIsOn()) return fn(inputs);
  const targets = gradientTargets;
  const params = variables.filter((v) => (targets ? targets.has(v.id) : v.trainable));
  const n = inputs.length;
  const block = tf.customGrad((...args: (tf.Tensor | SaveFn)[]) => {
    const save = args[args.length - 1] as SaveFn;
    const xs = args.slice(0, n) as tf.Tensor[];
    save(xs);
    return {
      value: fn(xs),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const floats = saved.filter((t) => t.dtype === 'float32');
        const wrt = [...floats, ...params];
        const { value, grads } = nestedGradients(() => forGradients(saved), wrt, dy);
        value.dispose();
        const byId = new Map(wrt.map((t, i) => [t.id, grads[i]]));
        // An input the block's output does not depend on (a mask) gets zeros; a trained weight must get a gradient.
        const out = [
          ...saved.map((t) => byId.get(t.id) ?? zerosFloat(t)),
          ...params.map((v) => {
            const g = byId.get(v.id);
            if (!g) {
              throw new Error(
                `gradient checkpointing: no gradient reached the trained weight '${v.name}' inside its recomputed block`,
              );
            }
            return g;
          }),
        ];
        // TF.js keeps every saved tensor and every intermediate gradient until the whole backward pass ends.
        // This block's saved inputs and its incoming gradient are needed by nothing else once it is done, so
        // they are released now (a buffer still shared with a live tensor stays): for so400m that is 18 MiB per
        // layer at batch 8 no longer held to the end.
        tf.dispose([...saved, dy]);
        return out;
      },
    };
  });
  return block(...inputs, ...params);
}
