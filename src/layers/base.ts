import * as tf from '@tensorflow/tfjs';
import { assertFitsBinding } from '../backends/binding.js';

/** Shape with an unknown (null) batch dimension, as TF.js layers use it. */
export type Shape = (number | null)[];

/** How freshly built weights are filled before a checkpoint is loaded. */
export type WeightInit = 'random' | 'zeros';

/** Arguments every SigLIP layer accepts on top of the TF.js ones. */
export interface SiglipLayerArgs {
  name?: string;
  trainable?: boolean;
  /** `random` (small normal, for benchmarks and training from scratch) or `zeros` (fast; weights are loaded next). */
  weightInit?: WeightInit;
}

/**
 * Base class of the layer library.
 *
 * TF.js does not track layers nested inside a layer, so this class does it: sublayers are created in the
 * constructor (named after the Hugging Face modules), registered with `sublayer()`, built with the parent,
 * and their weights are reported as the parent's. Weight names are prefixed with the path of the sublayer
 * (`encoder/layers.0/self_attn/q_proj/kernel`), which keeps them unique for saving and loading.
 */
export abstract class SiglipLayer extends tf.layers.Layer {
  protected readonly weightInit: WeightInit;
  private readonly children: SiglipLayer[] = [];
  private weightPrefix = '';

  constructor(args: SiglipLayerArgs = {}) {
    super({ name: args.name, trainable: args.trainable });
    this.weightInit = args.weightInit ?? 'random';
  }

  /** Registers a sublayer; call it in the constructor. */
  protected sublayer<L extends SiglipLayer>(layer: L): L {
    this.children.push(layer);
    return layer;
  }

  /** The sublayers, in creation order. */
  get sublayers(): readonly SiglipLayer[] {
    return this.children;
  }

  /**
   * Builds a sublayer so that its weights are named under this layer, at `path` (the sublayer's name unless the
   * checkpoint nests it deeper, e.g. `attention/out_proj`).
   */
  protected buildSublayer(
    layer: SiglipLayer,
    inputShape: Shape | Shape[],
    path: string = layer.name,
  ): void {
    layer.weightPrefix = `${this.weightPrefix}${path}/`;
    layer.build(inputShape);
    layer.built = true;
  }

  /**
   * Adds a float32 weight under this layer's prefix. On webgpu a weight over the storage-buffer binding limit is
   * refused (WebGPU would read zeros from it) unless the layer never binds it whole (`shardable`).
   */
  protected addParam(
    name: string,
    shape: number[],
    init: 'kernel' | 'zeros' | 'ones' | 'embedding',
    opts: { shardable?: boolean } = {},
  ): tf.LayerVariable {
    if (!opts.shardable) assertFitsBinding(`${this.name}: ${this.weightPrefix}${name}`, shape);
    return this.addWeight(
      `${this.weightPrefix}${name}`,
      shape,
      'float32',
      this.initializerFor(init),
    );
  }

  private initializerFor(
    init: 'kernel' | 'zeros' | 'ones' | 'embedding',
  ): ReturnType<typeof tf.initializers.zeros> {
    if (init === 'ones') return tf.initializers.ones();
    if (init === 'zeros' || this.weightInit === 'zeros') return tf.initializers.zeros();
    return tf.initializers.truncatedNormal({ stddev: 0.02, seed: undefined });
  }

  override get trainableWeights(): tf.LayerVariable[] {
    if (!this.trainable) return [];
    return [...super.trainableWeights, ...this.children.flatMap((c) => c.trainableWeights)];
  }

  override set trainableWeights(weights: tf.LayerVariable[]) {
    super.trainableWeights = weights;
  }

  override get nonTrainableWeights(): tf.LayerVariable[] {
    const own = super.nonTrainableWeights;
    const children = this.children.flatMap((c) =>
      this.trainable ? c.nonTrainableWeights : c.weights,
    );
    return [...own, ...children];
  }

  override set nonTrainableWeights(weights: tf.LayerVariable[]) {
    super.nonTrainableWeights = weights;
  }

  /**
   * Every variable `call` reads: this layer's weights, its sublayers' and any adapters attached to them (used to
   * recompute a layer in the backward pass, see `recomputeInBackward`).
   */
  variablesRead(): tf.Variable[] {
    const all = [
      ...this.weights.map((w) => w.read() as tf.Variable),
      ...this.children.flatMap((c) => c.variablesRead()),
    ];
    return [...new Map(all.map((v) => [v.id, v])).values()];
  }

  /** The base config plus this layer's own arguments. */
  protected withBaseConfig(own: tf.serialization.ConfigDict): tf.serialization.ConfigDict {
    return { ...super.getConfig(), weightInit: this.weightInit, ...own };
  }
}

/** Reads a layer's input that may come as one tensor or as a list (for optional masks). */
export function splitInputs(inputs: tf.Tensor | tf.Tensor[]): [tf.Tensor, tf.Tensor | undefined] {
  if (Array.isArray(inputs)) return [inputs[0], inputs[1]];
  return [inputs, undefined];
}

/** Same for shapes passed to `build` and `computeOutputShape`. */
export function firstShape(inputShape: Shape | Shape[]): Shape {
  return Array.isArray(inputShape[0]) ? (inputShape[0] as Shape) : (inputShape as Shape);
}

/** Throws a clear error naming the layer when a dimension is not what the weights need. */
export function checkLastDim(
  layer: string,
  shape: readonly (number | null)[],
  expected: number,
): void {
  const last = shape[shape.length - 1];
  if (last !== expected) {
    throw new Error(
      `${layer}: expected inputs whose last dimension is ${expected}, got shape [${shape.join(', ')}]`,
    );
  }
}
