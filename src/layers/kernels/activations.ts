import * as tf from '@tensorflow/tfjs';
import { chain } from './chain.js';
import { layerKernelOverrides } from './overrides.js';

/** The activation names Hugging Face configs use for SigLIP (`hidden_act`). */
export const SUPPORTED_ACTIVATIONS = [
  'gelu_pytorch_tanh',
  'gelu_new',
  'gelu_fast',
  'gelu',
  'quick_gelu',
] as const;
export type HiddenAct = (typeof SUPPORTED_ACTIVATIONS)[number];

/** The activations that are GELU with the tanh approximation (what the `geluTanh` kernels compute). */
export const TANH_GELUS: ReadonlySet<HiddenAct> = new Set([
  'gelu_pytorch_tanh',
  'gelu_new',
  'gelu_fast',
]);

export function isHiddenAct(name: string): name is HiddenAct {
  return (SUPPORTED_ACTIVATIONS as readonly string[]).includes(name);
}

/**
 * An activation name as a layer config may hold it. tf.serialization camel-cases every string value when a
 * saved model is loaded (`gelu_pytorch_tanh` comes back as `geluPytorchTanh`), so both spellings are accepted.
 */
export function parseHiddenAct(name: string): HiddenAct {
  const snake = name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  if (isHiddenAct(snake)) return snake;
  throw new Error(
    `unsupported activation '${name}' (supported: ${SUPPORTED_ACTIVATIONS.join(', ')})`,
  );
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

type SaveFn = (tensors: tf.Tensor[]) => void;

/**
 * GELU (tanh) with a hand-written gradient that keeps only `x` for the backward pass. The gradient TF.js derives
 * from the elementwise ops keeps about eight tensors of the MLP's intermediate size per layer alive on the tape,
 * the largest activations of a training step.
 */
const geluTanhWithGrad = tf.customGrad((...args: (tf.Tensor | SaveFn)[]) => {
  const [x, save] = args as [tf.Tensor, SaveFn];
  save([x]);
  // The reference's order of operations, each intermediate freed as soon as it is used (see `chain`).
  const t1 = chain(
    x,
    (u) => u.square(),
    (u) => u.mul(x),
    (u) => u.mul(0.044715),
    (u) => x.add(u),
    (u) => u.mul(SQRT_2_OVER_PI),
    (u) => u.tanh(),
    (u) => u.add(1),
  );
  const half = x.mul(0.5);
  const value = half.mul(t1);
  tf.dispose([half, t1]);
  return {
    value,
    // d/dx 0.5 x (1 + t) = 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2)
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
      tf.tidy(() => {
        const [sx] = saved;
        const x2 = sx.square();
        const t = chain(
          x2,
          (u) => u.mul(sx),
          (u) => u.mul(0.044715),
          (u) => sx.add(u),
          (u) => u.mul(SQRT_2_OVER_PI),
          (u) => u.tanh(),
        );
        const dInner = chain(
          x2,
          (u) => u.mul(3 * 0.044715),
          (u) => u.add(1),
          (u) => u.mul(SQRT_2_OVER_PI),
        );
        x2.dispose();
        const tail = chain(
          t,
          (u) => u.square(),
          (u) => tf.sub(1, u),
          (u) => u.mul(sx),
          (u) => u.mul(0.5),
          (u) => u.mul(dInner),
        );
        dInner.dispose();
        const local = chain(
          t,
          (u) => u.add(1),
          (u) => u.mul(0.5),
          (u) => u.add(tail),
        );
        tf.dispose([t, tail]);
        const dx = dy.mul(local);
        local.dispose();
        return dx;
      }),
  };
});

/** GELU, tanh approximation: `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))` (PyTorch `approximate="tanh"`). */
export function geluTanh(x: tf.Tensor): tf.Tensor {
  return layerKernelOverrides()?.geluTanh?.(x) ?? geluTanhWithGrad(x);
}

/** Exact GELU: `0.5 x (1 + erf(x / sqrt 2))`. */
export function geluErf(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => x.mul(0.5).mul(x.div(Math.SQRT2).erf().add(1)));
}

/** `x * sigmoid(1.702 x)`. */
export function quickGelu(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => x.mul(x.mul(1.702).sigmoid()));
}

export function activation(name: HiddenAct, x: tf.Tensor): tf.Tensor {
  switch (name) {
    case 'gelu_pytorch_tanh':
    case 'gelu_new':
    case 'gelu_fast':
      return geluTanh(x);
    case 'gelu':
      return geluErf(x);
    case 'quick_gelu':
      return quickGelu(x);
  }
}
