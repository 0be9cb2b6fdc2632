import * as tf from '@tensorflow/tfjs';
import { SiglipLayer, type Shape, type SiglipLayerArgs, firstShape } from './base.js';
import { linear } from './kernels/linear.js';

export interface TextHeadArgs extends SiglipLayerArgs {
  projectionSize: number;
}

/**
 * The text tower's pooling: `head(last_hidden_state[:, -1])`, a Linear applied to the LAST position (usually a
 * pad: SigLIP texts are always padded to the full length and no attention mask is used).
 * Input `[B, L, D]`, output `[B, projectionSize]`. Weights `kernel` `[D, P]`, `bias` `[P]`.
 */
export class SiglipTextHead extends SiglipLayer {
  static readonly className = 'SiglipTextHead';
  readonly projectionSize: number;
  kernel!: tf.LayerVariable;
  bias!: tf.LayerVariable;

  constructor(args: TextHeadArgs) {
    super(args);
    this.projectionSize = args.projectionSize;
  }

  override build(inputShape: Shape | Shape[]): void {
    const shape = firstShape(inputShape);
    const d = shape[shape.length - 1];
    if (d == null) throw new Error(`${this.name}: the hidden size must be known`);
    this.kernel = this.addParam('kernel', [d, this.projectionSize], 'kernel');
    this.bias = this.addParam('bias', [this.projectionSize], 'zeros');
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    return tf.tidy(() => {
      const [b, l, d] = x.shape;
      const last = x.slice([0, l - 1, 0], [b, 1, d]).reshape([b, d]);
      return linear(last, this.kernel.read() as tf.Tensor2D, this.bias.read() as tf.Tensor1D);
    });
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    return [firstShape(inputShape)[0], this.projectionSize];
  }

  override getConfig(): tf.serialization.ConfigDict {
    return this.withBaseConfig({ projectionSize: this.projectionSize });
  }
}
tf.serialization.registerClass(SiglipTextHead);
