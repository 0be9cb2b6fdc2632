import * as tf from '@tensorflow/tfjs';
import { SiglipLayer, type Shape, type SiglipLayerArgs, firstShape } from './base.js';

/** `x / ||x||_2` over the last axis (the embeddings the dual model compares). No weights. */
export class L2Normalize extends SiglipLayer {
  static readonly className = 'SiglipL2Normalize';

  constructor(args: SiglipLayerArgs = {}) {
    super(args);
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    return tf.tidy(() => x.div(tf.norm(x, 'euclidean', -1, true)));
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    return firstShape(inputShape);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return this.withBaseConfig({});
  }
}
tf.serialization.registerClass(L2Normalize);
