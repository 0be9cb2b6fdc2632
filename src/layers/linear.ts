import * as tf from '@tensorflow/tfjs';
import { SiglipLayer, type Shape, type SiglipLayerArgs, checkLastDim, firstShape } from './base.js';
import { linear } from './kernels/linear.js';

export interface LinearArgs extends SiglipLayerArgs {
  units: number;
  useBias?: boolean;
}

/** `nn.Linear`: kernel `[in, out]` (the transpose of the PyTorch weight) and bias `[out]`. */
export class Linear extends SiglipLayer {
  static readonly className = 'SiglipLinear';
  readonly units: number;
  readonly useBias: boolean;
  kernel!: tf.LayerVariable;
  bias?: tf.LayerVariable;

  constructor(args: LinearArgs) {
    super(args);
    this.units = args.units;
    this.useBias = args.useBias ?? true;
  }

  override build(inputShape: Shape | Shape[]): void {
    const shape = firstShape(inputShape);
    const inDim = shape[shape.length - 1];
    if (inDim == null) throw new Error(`${this.name}: the last input dimension must be known`);
    this.kernel = this.addParam('kernel', [inDim, this.units], 'kernel');
    if (this.useBias) this.bias = this.addParam('bias', [this.units], 'zeros');
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    checkLastDim(this.name, x.shape, this.kernel.shape[0] as number);
    return linear(
      x,
      this.kernel.read() as tf.Tensor2D,
      this.bias?.read() as tf.Tensor1D | undefined,
    );
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const shape = firstShape(inputShape);
    return [...shape.slice(0, -1), this.units];
  }

  override getConfig(): tf.serialization.ConfigDict {
    return this.withBaseConfig({ units: this.units, useBias: this.useBias });
  }
}
tf.serialization.registerClass(Linear);
