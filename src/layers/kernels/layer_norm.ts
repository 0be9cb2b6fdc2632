import * as tf from '@tensorflow/tfjs';
import { layerKernelOverrides } from './overrides.js';

type SaveFn = (tensors: tf.Tensor[]) => void;

function normalize(x: tf.Tensor, epsilon: number): { xhat: tf.Tensor; rstd: tf.Tensor } {
  const { mean, variance } = tf.moments(x, -1, true);
  const rstd = variance.add(epsilon).rsqrt();
  return { xhat: x.sub(mean).mul(rstd), rstd };
}

/**
 * LayerNorm with a hand-written gradient that keeps only the input (and gamma) for the backward pass and
 * recomputes mean and variance there: the derived gradient keeps about eight hidden-size tensors per norm alive.
 *   dx = rstd (g - mean(g) - xhat mean(g xhat)),  g = dy gamma;  dgamma = sum(dy xhat);  dbeta = sum(dy)
 */
function layerNormWithGrad(epsilon: number) {
  return tf.customGrad((...args: (tf.Tensor | SaveFn)[]) => {
    const [x, gamma, beta, save] = args as [tf.Tensor, tf.Tensor1D, tf.Tensor1D, SaveFn];
    save([x, gamma]);
    return {
      value: tf.tidy(() => {
        const { xhat } = normalize(x, epsilon);
        return xhat.mul(gamma).add(beta);
      }),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const [sx, sgamma] = saved;
          const { xhat, rstd } = normalize(sx, epsilon);
          const g = dy.mul(sgamma);
          const dx = g
            .sub(g.mean(-1, true))
            .sub(xhat.mul(g.mul(xhat).mean(-1, true)))
            .mul(rstd);
          const lead = dy.shape.length - 1;
          const axes = [...Array(lead).keys()];
          return [dx, dy.mul(xhat).sum(axes), dy.sum(axes)];
        }),
    };
  });
}

const byEpsilon = new Map<number, ReturnType<typeof layerNormWithGrad>>();

/** LayerNorm over the last axis with biased variance, as `torch.nn.LayerNorm`. */
export function layerNorm(
  x: tf.Tensor,
  gamma: tf.Tensor1D,
  beta: tf.Tensor1D,
  epsilon: number,
): tf.Tensor {
  const replaced = layerKernelOverrides()?.layerNorm?.(x, gamma, beta, epsilon);
  if (replaced !== undefined) return replaced;
  let f = byEpsilon.get(epsilon);
  if (!f) {
    f = layerNormWithGrad(epsilon);
    byEpsilon.set(epsilon, f);
  }
  return f(x, gamma, beta);
}
