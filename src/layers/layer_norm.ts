import * as tf from '@tensorflow/tfjs';
import { SiglipLayer, type Shape, type SiglipLayerArgs, checkLastDim, firstShape } from './base.js';
import { layerNorm } from './kernels/layer_norm.js';

export interface LayerNormArgs extends SiglipLayerArgs {
  epsilon?: number;
}

/** `nn.LayerNorm` over the last axis: weights `gamma` (weight) and `beta` (bias). */
export class LayerNorm extends SiglipLayer {
  static readonly className = 'SiglipLayerNorm';
  readonly epsilon: number;
  gamma!: tf.LayerVariable;
  beta!: tf.LayerVariable;

  constructor(args: LayerNormArgs = {}) {
    super(args);
    this.epsilon = args.epsilon ?? 1e-6;
  }

  override build(inputShape: Shape | Shape[]): void {
    const shape = firstShape(inputShape);
    const dim = shape[shape.length - 1];
    if (dim == null) throw new Error(`${this.name}: the last input dimension must be known`);
    this.gamma = this.addParam('gamma', [dim], 'ones');
    this.beta = this.addParam('beta', [dim], 'zeros');
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    checkLastDim(this.name, x.shape, this.gamma.shape[0] as number);
    return layerNorm(
      x,
      this.gamma.read() as tf.Tensor1D,
      this.beta.read() as tf.Tensor1D,
      this.epsilon,
    );
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    return firstShape(inputShape);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return this.withBaseConfig({ epsilon: this.epsilon });
  }
}
tf.serialization.registerClass(LayerNorm);
