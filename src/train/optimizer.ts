import * as tf from '@tensorflow/tfjs';
import { ADAMW_KERNEL, type AdamWKernelAttrs } from './adamw_kernel.js';
import { type Param, paramKey } from './params.js';
import { runKernel } from '../internals/tfjs.js';

/** A learning rate as a function of the optimizer step (0-based: the rate used by the first update is `lr(0)`). */
export type LrSchedule = (step: number) => number;

export interface WarmupCosineOptions {
  /** Peak learning rate, reached at the end of the warm-up. */
  peak: number;
  /** Steps of linear warm-up from `peak / warmupSteps` (step 0) to `peak`. Default 0. */
  warmupSteps?: number;
  /** Total optimizer steps; the cosine decays from `peak` to `min` over `totalSteps - warmupSteps`. */
  totalSteps: number;
  /** Floor of the decay. Default 0. */
  min?: number;
}

/**
 * Linear warm-up then cosine decay: `lr(s) = peak * (s+1) / warmup` for `s < warmup`, then
 * `min + (peak - min) * 0.5 * (1 + cos(pi * p))` with `p = (s - warmup) / (total - warmup)` clamped to [0, 1].
 */
export function warmupCosine(o: WarmupCosineOptions): LrSchedule {
  const warmup = o.warmupSteps ?? 0;
  const min = o.min ?? 0;
  if (!(o.peak > 0)) throw new Error(`warmupCosine: peak must be > 0, got ${o.peak}`);
  if (!(o.totalSteps > warmup)) {
    throw new Error(
      `warmupCosine: totalSteps (${o.totalSteps}) must exceed warmupSteps (${warmup})`,
    );
  }
  return (step: number) => {
    if (step < warmup) return (o.peak * (step + 1)) / warmup;
    const p = Math.min(1, Math.max(0, (step - warmup) / (o.totalSteps - warmup)));
    return min + (o.peak - min) * 0.5 * (1 + Math.cos(Math.PI * p));
  };
}

export interface AdamWOptions {
  /** A constant or a schedule. Default 1e-4. */
  learningRate?: number | LrSchedule;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  /** Decoupled weight decay (PyTorch `AdamW` semantics: `p -= lr * wd * p` before the Adam update). Default 0.01. */
  weightDecay?: number;
  /**
   * Which parameters are decayed. Default: matrices only (kernels, embeddings, the probe), not biases,
   * LayerNorm weights or the logit scale/bias.
   */
  decay?: (p: Param) => boolean;
}

export function defaultDecay(p: Param): boolean {
  return p.variable.shape.length >= 2;
}

/** The optimizer's state in a serialisable form (see checkpoint.ts). */
export interface AdamWState {
  step: number;
  /** `m.<tower:name>` and `v.<tower:name>`. */
  tensors: Map<string, tf.Tensor>;
}

/** A non-trainable variable holding `init`'s data; `init` itself is released (the variable shares its data). */
function ownVariable(init: tf.Tensor): tf.Variable {
  const v = tf.variable(init, false);
  init.dispose();
  return v;
}

/**
 * AdamW with decoupled weight decay, the update `torch.optim.AdamW` performs:
 * `p -= lr*wd*p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= lr * (m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + eps)`.
 * TF.js's `tf.train.adam` has no decoupled decay, hence this class. Moments are created lazily per parameter.
 */
export class AdamW {
  /** Updates applied so far. */
  step = 0;
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
  readonly weightDecay: number;
  private readonly lr: LrSchedule;
  private readonly decay: (p: Param) => boolean;
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();

  constructor(opts: AdamWOptions = {}) {
    const lr = opts.learningRate ?? 1e-4;
    this.lr = typeof lr === 'number' ? () => lr : lr;
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.epsilon = opts.epsilon ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0.01;
    this.decay = opts.decay ?? defaultDecay;
  }

  /** The learning rate the next update uses. */
  get learningRate(): number {
    return this.lr(this.step);
  }

  /** Applies one update to `params` from `grads` (keyed by `paramKey`). Gradients are not disposed. */
  applyGradients(params: readonly Param[], grads: ReadonlyMap<string, tf.Tensor>): void {
    const lr = this.lr(this.step);
    const t = this.step + 1;
    const bc1 = 1 - this.beta1 ** t;
    const bc2 = 1 - this.beta2 ** t;
    const fused = tf.getKernel(ADAMW_KERNEL, tf.getBackend()) !== undefined;
    for (const p of params) {
      const key = paramKey(p);
      const g = grads.get(key);
      if (!g) throw new Error(`AdamW: no gradient for parameter ${key}`);
      const variable = p.variable.read() as tf.Variable;
      let m = this.m.get(key);
      let v = this.v.get(key);
      if (!m || !v) {
        m = ownVariable(tf.zerosLike(variable));
        v = ownVariable(tf.zerosLike(variable));
        this.m.set(key, m);
        this.v.set(key, v);
      }
      const mm = m;
      const vv = v;
      const decay = this.decay(p) ? this.weightDecay : 0;
      if (fused && [variable, g, mm, vv].every((t) => t.dtype === 'float32' && t.size > 0)) {
        // one native pass (the backend's fused kernel) instead of a dozen elementwise ops
        const attrs: AdamWKernelAttrs = {
          lr,
          beta1: this.beta1,
          beta2: this.beta2,
          epsilon: this.epsilon,
          bc1,
          bc2,
          decay,
        };
        tf.tidy(() => {
          const [pNew, mNew, vNew] = runKernel(
            ADAMW_KERNEL,
            { param: variable, grad: g, m: mm, v: vv },
            { ...attrs },
          ) as tf.Tensor[];
          mm.assign(mNew);
          vv.assign(vNew);
          p.variable.write(pNew);
        });
        continue;
      }
      tf.tidy(() => {
        const mNew = mm.mul(this.beta1).add(g.mul(1 - this.beta1));
        const vNew = vv.mul(this.beta2).add(g.square().mul(1 - this.beta2));
        mm.assign(mNew);
        vv.assign(vNew);
        const update = mNew.div(bc1).div(vNew.div(bc2).sqrt().add(this.epsilon)).mul(lr);
        const decayed = decay ? variable.mul(1 - lr * decay) : variable;
        p.variable.write(decayed.sub(update));
      });
    }
    this.step++;
  }

  /** Copies of the moments (the caller disposes them) and the step count. */
  getState(): AdamWState {
    const tensors = new Map<string, tf.Tensor>();
    for (const [k, m] of this.m) tensors.set(`m.${k}`, m.clone());
    for (const [k, v] of this.v) tensors.set(`v.${k}`, v.clone());
    return { step: this.step, tensors };
  }

  /** Restores a state saved by `getState` (tensors are copied). */
  setState(state: AdamWState): void {
    this.disposeMoments();
    this.step = state.step;
    for (const [name, t] of state.tensors) {
      const dot = name.indexOf('.');
      const kind = name.slice(0, dot);
      const key = name.slice(dot + 1);
      if (kind !== 'm' && kind !== 'v') {
        throw new Error(
          `AdamW.setState: unexpected tensor '${name}' (expected m.<param> or v.<param>)`,
        );
      }
      (kind === 'm' ? this.m : this.v).set(key, ownVariable(t.clone()));
    }
  }

  private disposeMoments(): void {
    tf.dispose([...this.m.values(), ...this.v.values()]);
    this.m.clear();
    this.v.clear();
  }

  dispose(): void {
    this.disposeMoments();
  }
}

/**
 * The global L2 norm of `grads`, `sqrt(sum of every squared element)`, as a scalar tensor (nothing is read back).
 * The per-tensor sums are stacked, not `tf.addN`ed: TF.js's webgpu AddN binds every input at once and fails (a
 * validation error, and zeros) beyond the adapter's storage-buffer limit, while stack splits its inputs.
 */
export function globalNorm(grads: ReadonlyMap<string, tf.Tensor>): tf.Scalar {
  return tf.tidy(
    () =>
      tf
        .stack([...grads.values()].map((g) => g.square().sum()))
        .sum()
        .sqrt() as tf.Scalar,
  );
}

/**
 * Scales gradients so that their global L2 norm is at most `maxNorm` (as `torch.nn.utils.clip_grad_norm_`:
 * factor `maxNorm / (norm + 1e-6)` when it is below 1), on the device: nothing is read back, so a training step
 * never waits for the norm. Returns new tensors and the norm before clipping (a scalar the caller disposes).
 */
export function clipByGlobalNormOnDevice(
  grads: ReadonlyMap<string, tf.Tensor>,
  maxNorm: number,
): { grads: Map<string, tf.Tensor>; norm: tf.Scalar } {
  if (!(maxNorm > 0)) throw new Error(`clipByGlobalNorm: maxNorm must be > 0, got ${maxNorm}`);
  const norm = globalNorm(grads);
  const factor = tf.tidy(() => tf.minimum(tf.scalar(1), tf.div(maxNorm, norm.add(1e-6))));
  const out = new Map<string, tf.Tensor>();
  for (const [k, g] of grads) out.set(k, g.mul(factor));
  factor.dispose();
  return { grads: out, norm };
}

/**
 * `clipByGlobalNormOnDevice`, then the norm read back asynchronously: returns new tensors and the norm before
 * clipping.
 */
export async function clipByGlobalNorm(
  grads: ReadonlyMap<string, tf.Tensor>,
  maxNorm: number,
): Promise<{ grads: Map<string, tf.Tensor>; norm: number }> {
  const clipped = clipByGlobalNormOnDevice(grads, maxNorm);
  const norm = (await clipped.norm.data())[0];
  clipped.norm.dispose();
  return { grads: clipped.grads, norm };
}
