import * as tf from '@tensorflow/tfjs';
import { SiglipLayer } from '../layers/base.js';
import { Linear } from '../layers/linear.js';
import type { SiglipModel } from '../model/siglip_model.js';
import type { Param } from './params.js';

export interface LoraOptions {
  /** Rank r of the update `A B` (A `[in, r]`, B `[r, out]`). Default 8. */
  rank?: number;
  /** The update is scaled by `alpha / rank`. Default `2 * rank`. */
  alpha?: number;
  /** Linear layers to adapt, by module name. Default: `q_proj k_proj v_proj out_proj fc1 fc2`. */
  targets?: string[];
  /** Towers to adapt. Default both. */
  towers?: ('vision' | 'text')[];
  /** `encoder` (default): only the encoder layers; `all`: also the vision pooling head and the text head. */
  scope?: 'encoder' | 'all';
  /** Seed of A's initialisation (B starts at zero, so the adapted model starts equal to the base). */
  seed?: number;
}

export const DEFAULT_LORA_TARGETS = ['q_proj', 'k_proj', 'v_proj', 'out_proj', 'fc1', 'fc2'];

/** One adapted Linear layer. */
export interface LoraEntry {
  tower: 'vision' | 'text';
  /** Weight path of the layer, e.g. `encoder/layers.3/self_attn/q_proj`. */
  path: string;
  layer: Linear;
}

function linearLayers(layers: readonly tf.layers.Layer[]): Linear[] {
  const out: Linear[] = [];
  const visit = (l: tf.layers.Layer) => {
    if (l instanceof Linear) out.push(l);
    if (l instanceof SiglipLayer) l.sublayers.forEach(visit);
  };
  layers.forEach(visit);
  return out;
}

/**
 * LoRA adapters on a model's Linear layers: `y = x W + b + (x A) B * alpha/rank`. Only A and B are trained (pass
 * `params` to the Trainer); the base weights stay as they are. `merge()` writes `W + A B * alpha/rank` into the
 * kernels, after which the model is a plain model again (for export).
 */
export class LoraAdapters {
  readonly rank: number;
  readonly alpha: number;
  readonly scale: number;
  readonly entries: LoraEntry[];

  private constructor(rank: number, alpha: number, entries: LoraEntry[]) {
    this.rank = rank;
    this.alpha = alpha;
    this.scale = alpha / rank;
    this.entries = entries;
  }

  /** Attaches fresh adapters (A uniform in ±1/sqrt(in), B zeros) to the targeted layers of `model`. */
  static attach(model: SiglipModel, opts: LoraOptions = {}): LoraAdapters {
    const rank = opts.rank ?? 8;
    const alpha = opts.alpha ?? 2 * rank;
    if (!(Number.isInteger(rank) && rank >= 1))
      throw new Error(`lora: rank must be an integer >= 1, got ${rank}`);
    const targets = new Set(opts.targets ?? DEFAULT_LORA_TARGETS);
    const towers = opts.towers ?? ['vision', 'text'];
    const entries: LoraEntry[] = [];
    let seed = opts.seed ?? 0;
    for (const tower of towers) {
      const m = model.parts[tower];
      if (!m) throw new Error(`lora: the model has no ${tower} tower`);
      for (const layer of linearLayers(m.layers)) {
        const path = layer.kernel.originalName.replace(/\/kernel$/, '');
        if (!targets.has(layer.name)) continue;
        if ((opts.scope ?? 'encoder') === 'encoder' && !path.startsWith('encoder/')) continue;
        if (layer.lora) throw new Error(`lora: ${tower}:${path} already has an adapter`);
        const [inDim, outDim] = layer.kernel.shape as number[];
        if (rank > Math.min(inDim, outDim)) {
          throw new Error(
            `lora: rank ${rank} exceeds the size of ${tower}:${path} [${inDim}, ${outDim}]`,
          );
        }
        const bound = 1 / Math.sqrt(inDim);
        // LayerVariable makes a variable sharing the initial tensor's data: free the initial tensor itself.
        const initA = tf.randomUniform([inDim, rank], -bound, bound, 'float32', seed++);
        const initB = tf.zeros([rank, outDim]);
        const a = new tf.LayerVariable(initA, 'float32', `${tower}/${path}/lora_a`);
        const b = new tf.LayerVariable(initB, 'float32', `${tower}/${path}/lora_b`);
        tf.dispose([initA, initB]);
        layer.lora = { a, b, scale: alpha / rank };
        entries.push({ tower, path, layer });
      }
    }
    if (entries.length === 0) {
      throw new Error(`lora: no Linear layer matches the targets ${[...targets].join(', ')}`);
    }
    return new LoraAdapters(rank, alpha, entries);
  }

  /** The adapter weights as trainable parameters (`<path>/lora_a`, `<path>/lora_b`). */
  get params(): Param[] {
    return this.entries.flatMap((e) => {
      const lora = e.layer.lora;
      if (!lora) return [];
      return [
        { tower: e.tower, name: `${e.path}/lora_a`, variable: lora.a },
        { tower: e.tower, name: `${e.path}/lora_b`, variable: lora.b },
      ];
    });
  }

  /** Number of adapter parameters. */
  get size(): number {
    return this.params.reduce(
      (n, p) => n + (p.variable.shape as number[]).reduce((a, b) => a * b, 1),
      0,
    );
  }

  /** Writes `W + A B * scale` into every adapted kernel and detaches the adapters. */
  merge(): void {
    for (const e of this.entries) {
      const lora = e.layer.lora;
      if (!lora) continue;
      tf.tidy(() => {
        const delta = tf.matMul(lora.a.read(), lora.b.read()).mul(lora.scale);
        e.layer.kernel.write(e.layer.kernel.read().add(delta));
      });
    }
    this.remove();
  }

  /** Detaches and disposes the adapters without merging them. */
  remove(): void {
    for (const e of this.entries) {
      const lora = e.layer.lora;
      if (!lora) continue;
      e.layer.lora = undefined;
      lora.a.dispose();
      lora.b.dispose();
    }
  }

  /** Adapter tensors keyed `<tower>:<path>/lora_a|b` (copies; for checkpoints). */
  getWeights(): Map<string, tf.Tensor> {
    return new Map(this.params.map((p) => [`${p.tower}:${p.name}`, p.variable.read().clone()]));
  }

  /** Loads adapter tensors saved by `getWeights` (every adapter must be present, shapes equal). */
  setWeights(weights: ReadonlyMap<string, tf.Tensor>): void {
    for (const p of this.params) {
      const key = `${p.tower}:${p.name}`;
      const t = weights.get(key);
      if (!t) throw new Error(`lora: no saved weight for adapter ${key}`);
      if (t.shape.join(',') !== p.variable.shape.join(',')) {
        throw new Error(
          `lora: saved ${key} has shape [${t.shape.join(', ')}], expected [${p.variable.shape.join(', ')}]`,
        );
      }
      p.variable.write(t);
    }
  }
}
