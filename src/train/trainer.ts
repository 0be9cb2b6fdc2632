import * as tf from '@tensorflow/tfjs';
import type { SiglipModel } from '../model/siglip_model.js';
import { type PairSource, disposeBatch, isPairArrays, iterateBatches } from './data.js';
import { type EvalResult, evaluatePairs } from './evaluate.js';
import type { PairBatch } from './forward.js';
import { type FreezeOptions, trainableParams } from './freeze.js';
import { lossAndGrads } from './grads.js';
import {
  AdamW,
  type LrSchedule,
  clipByGlobalNormOnDevice,
  globalNorm,
  warmupCosine,
} from './optimizer.js';
import type { Param } from './params.js';
import { setGradientCheckpointing } from './recompute.js';

export interface TrainerOptions {
  /** Peak learning rate. Default 1e-4. */
  learningRate?: number;
  /** Linear warm-up steps (optimizer steps). Default 0. */
  warmupSteps?: number;
  /** Optimizer steps of the whole run: enables cosine decay to `minLearningRate` (otherwise constant after warm-up). */
  totalSteps?: number;
  minLearningRate?: number;
  /** Or a schedule of your own (overrides the three above). */
  schedule?: LrSchedule;
  /** AdamW decoupled weight decay. Default 0.01 (matrices only). */
  weightDecay?: number;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  /** Clip the global gradient norm to this value. Default: no clipping. */
  maxGradNorm?: number;
  /**
   * Micro-batches per optimizer step: gradients are averaged over them, giving an effective batch of
   * `batchSize * accumulationSteps`. Note that the sigmoid loss takes its negatives within each micro-batch.
   */
  accumulationSteps?: number;
  freeze?: FreezeOptions;
  /**
   * Recompute each encoder layer in the backward pass instead of keeping its activations (gradient
   * checkpointing, see `setGradientCheckpointing`): about one more forward pass per step, and the memory of one
   * layer's activations instead of all. Needed for full-size models on wasm (4 GiB heap). Default false.
   */
  gradientCheckpointing?: boolean;
  /** Train exactly these parameters (e.g. LoRA adapters); overrides `freeze`. */
  params?: Param[];
  /** The loss of a batch (default: the SigLIP sigmoid loss of the pairs). */
  lossFn?: (model: SiglipModel, batch: PairBatch) => tf.Scalar;
}

export interface StepResult {
  /** Optimizer step just taken (1-based). */
  step: number;
  /** Mean loss over the micro-batches. */
  loss: number;
  /** Learning rate used. */
  learningRate: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** Pairs seen in this step. */
  pairs: number;
}

export interface FitOptions {
  batchSize: number;
  epochs?: number;
  /** Stop after this many optimizer steps. */
  maxSteps?: number;
  shuffle?: boolean;
  seed?: number;
  /** Held-out pairs: evaluated after every `evalEvery` epochs (default 1) and at the end. */
  evalData?: PairSource;
  evalEvery?: number;
  /** Show a progress bar on stderr (loss, learning rate, pairs/s). Default: when stderr is a terminal. */
  progress?: boolean;
  onStep?: (r: StepResult) => void;
  onEval?: (epoch: number, r: EvalResult) => void;
}

export interface FitHistory {
  steps: StepResult[];
  evals: { epoch: number; result: EvalResult }[];
}

/**
 * Fine-tunes a `SiglipModel` on image-text pairs with the sigmoid loss and AdamW (decoupled weight decay,
 * warm-up + cosine schedule, gradient clipping and accumulation, freezing). No tensors are left behind by a step.
 */
export class Trainer {
  readonly optimizer: AdamW;
  readonly params: Param[];
  private readonly opts: TrainerOptions;

  constructor(
    readonly model: SiglipModel,
    opts: TrainerOptions = {},
  ) {
    this.opts = opts;
    this.params = opts.params ?? trainableParams(model, opts.freeze);
    if (opts.gradientCheckpointing !== undefined)
      setGradientCheckpointing(model, opts.gradientCheckpointing);
    const peak = opts.learningRate ?? 1e-4;
    const warmup = opts.warmupSteps ?? 0;
    const schedule: LrSchedule =
      opts.schedule ??
      (opts.totalSteps
        ? warmupCosine({
            peak,
            warmupSteps: warmup,
            totalSteps: opts.totalSteps,
            min: opts.minLearningRate,
          })
        : (s: number) => (s < warmup ? (peak * (s + 1)) / warmup : peak));
    this.optimizer = new AdamW({
      learningRate: schedule,
      weightDecay: opts.weightDecay,
      beta1: opts.beta1,
      beta2: opts.beta2,
      epsilon: opts.epsilon,
    });
    const acc = opts.accumulationSteps ?? 1;
    if (!(Number.isInteger(acc) && acc >= 1)) {
      throw new Error(`accumulationSteps must be an integer >= 1, got ${acc}`);
    }
    if (opts.maxGradNorm !== undefined && !(opts.maxGradNorm > 0)) {
      throw new Error(`maxGradNorm must be > 0, got ${opts.maxGradNorm}`);
    }
  }

  get accumulationSteps(): number {
    return this.opts.accumulationSteps ?? 1;
  }

  /**
   * One optimizer step over one batch, or over micro-batches whose gradients are averaged. Asynchronous end to
   * end: the token ids are read without a synchronous device read, the loss, the gradient norm and the clipping
   * stay on the device, and the loss and norm are read back once, after the update has been queued. So a step
   * runs on every backend (webgpu in Node and in browsers included) and never stalls a GPU in the middle.
   */
  async step(microBatches: PairBatch | PairBatch[]): Promise<StepResult> {
    const list = Array.isArray(microBatches) ? microBatches : [microBatches];
    if (list.length === 0) throw new Error('Trainer.step: no batch');
    let grads: Map<string, tf.Tensor> | undefined;
    const losses: tf.Scalar[] = [];
    let norm: tf.Scalar | undefined;
    let pairs = 0;
    try {
      for (const b of list) {
        const r = await lossAndGrads(this.model, b, this.params, this.opts.lossFn);
        losses.push(r.loss);
        pairs += b.pixelValues.shape[0];
        if (!grads) {
          grads = r.grads;
        } else {
          for (const [k, g] of r.grads) {
            const prev = grads.get(k) as tf.Tensor;
            grads.set(k, prev.add(g));
            tf.dispose([prev, g]);
          }
        }
      }
      let g = grads as Map<string, tf.Tensor>;
      if (list.length > 1) {
        const mean = new Map([...g].map(([k, t]) => [k, t.div(list.length)]));
        tf.dispose([...g.values()]);
        g = grads = mean;
      }
      if (this.opts.maxGradNorm !== undefined) {
        const clipped = clipByGlobalNormOnDevice(g, this.opts.maxGradNorm);
        tf.dispose([...g.values()]);
        g = grads = clipped.grads;
        norm = clipped.norm;
      } else {
        norm = globalNorm(g);
      }
      const learningRate = this.optimizer.learningRate;
      this.optimizer.applyGradients(this.params, g);
      tf.dispose([...g.values()]);
      grads = undefined;
      // One read at the end: waits for the step's work, which also keeps the host from running ahead of a GPU.
      const stacked = tf.stack([...losses, norm]);
      const values = await stacked.data();
      stacked.dispose();
      let lossSum = 0;
      for (let i = 0; i < list.length; i++) lossSum += values[i];
      return {
        step: this.optimizer.step,
        loss: lossSum / list.length,
        learningRate,
        gradNorm: values[list.length],
        pairs,
      };
    } finally {
      tf.dispose([...losses, ...(norm ? [norm] : []), ...(grads ? [...grads.values()] : [])]);
    }
  }

  /** Trains over `data` for `epochs` (default 1), evaluating on `evalData` when given. */
  async fit(data: PairSource, opts: FitOptions): Promise<FitHistory> {
    const history: FitHistory = { steps: [], evals: [] };
    const epochs = opts.epochs ?? 1;
    const acc = this.accumulationSteps;
    // `process` is absent in browsers: no terminal, no bar there.
    const stderr = typeof process === 'undefined' ? undefined : process.stderr;
    const showBar = stderr !== undefined && (opts.progress ?? Boolean(stderr.isTTY));
    const perEpoch = isPairArrays(data)
      ? Math.floor(Math.ceil(data.pixelValues.shape[0] / opts.batchSize) / acc)
      : undefined;
    const total = Math.min(
      opts.maxSteps ?? Infinity,
      perEpoch !== undefined ? perEpoch * epochs : Infinity,
    );
    // Loaded only for a bar: cli-progress is Node-only, and the trainer also runs in browsers.
    const cliProgress = showBar ? (await import('cli-progress')).default : undefined;
    const bar = cliProgress
      ? new cliProgress.SingleBar(
          {
            format:
              'train {bar} {value}/{total} | loss {loss} | lr {lr} | {rate} pairs/s | eta {eta_formatted}',
            stream: stderr,
            hideCursor: false,
          },
          cliProgress.Presets.shades_classic,
        )
      : undefined;
    bar?.start(Number.isFinite(total) ? total : 0, 0, { loss: '-', lr: '-', rate: '-' });
    let stop = false;
    try {
      for (let epoch = 1; epoch <= epochs && !stop; epoch++) {
        let pending: PairBatch[] = [];
        const run = async () => {
          const t0 = performance.now();
          const r = await this.step(pending);
          const secs = (performance.now() - t0) / 1000;
          pending.forEach(disposeBatch);
          pending = [];
          history.steps.push(r);
          opts.onStep?.(r);
          bar?.increment(1, {
            loss: r.loss.toFixed(4),
            lr: r.learningRate.toExponential(2),
            rate: (r.pairs / secs).toFixed(1),
          });
          if (history.steps.length >= (opts.maxSteps ?? Infinity)) stop = true;
        };
        for await (const b of iterateBatches(data, {
          batchSize: opts.batchSize,
          shuffle: opts.shuffle,
          seed: (opts.seed ?? 0) + epoch,
          dropRemainder: true,
        })) {
          if (stop) {
            disposeBatch(b);
            continue;
          }
          pending.push(b);
          if (pending.length === acc) await run();
        }
        pending.forEach(disposeBatch);
        const every = opts.evalEvery ?? 1;
        if (opts.evalData && (epoch % every === 0 || epoch === epochs || stop)) {
          const result = await this.evaluate(opts.evalData, opts.batchSize);
          history.evals.push({ epoch, result });
          opts.onEval?.(epoch, result);
        }
      }
    } finally {
      bar?.stop();
    }
    return history;
  }

  /** Loss and retrieval recall@1/5 on held-out pairs. */
  evaluate(data: PairSource, batchSize = 32): Promise<EvalResult> {
    return evaluatePairs(this.model, data, { batchSize });
  }

  dispose(): void {
    this.optimizer.dispose();
  }
}
