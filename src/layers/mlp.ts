import * as tf from '@tensorflow/tfjs';
import { SiglipLayer, type Shape, type SiglipLayerArgs, firstShape } from './base.js';
import { type HiddenAct, activation, parseHiddenAct } from './kernels/activations.js';
import type { LinearOptions } from './kernels/linear.js';
import { mlp } from './kernels/mlp.js';
import { Linear } from './linear.js';

export interface MlpArgs extends SiglipLayerArgs {
  hiddenSize: number;
  intermediateSize: number;
  hiddenAct?: HiddenAct;
}

/** `SiglipMLP`: `fc2(gelu_tanh(fc1(x)))`. */
export class SiglipMLP extends SiglipLayer {
  static readonly className = 'SiglipMLP';
  readonly hiddenSize: number;
  readonly intermediateSize: number;
  readonly hiddenAct: HiddenAct;
  readonly fc1: Linear;
  readonly fc2: Linear;

  constructor(args: MlpArgs) {
    super(args);
    this.hiddenSize = args.hiddenSize;
    this.intermediateSize = args.intermediateSize;
    this.hiddenAct = parseHiddenAct(args.hiddenAct ?? 'gelu_pytorch_tanh');
    this.fc1 = this.sublayer(
      new Linear({ name: 'fc1', units: args.intermediateSize, weightInit: args.weightInit }),
    );
    this.fc2 = this.sublayer(
      new Linear({ name: 'fc2', units: args.hiddenSize, weightInit: args.weightInit }),
    );
  }

  override build(inputShape: Shape | Shape[]): void {
    const shape = firstShape(inputShape);
    this.buildSublayer(this.fc1, shape);
    this.buildSublayer(this.fc2, [...shape.slice(0, -1), this.intermediateSize]);
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    return this.run(x);
  }

  /**
   * `residual + call(x)` (the encoder layer's second block; the add may be fused into fc2). `options` apply to fc2
   * (see `LinearOptions`).
   */
  callWithResidual(x: tf.Tensor, residual: tf.Tensor, options: LinearOptions = {}): tf.Tensor {
    return this.run(x, residual, options);
  }

  private run(x: tf.Tensor, residual?: tf.Tensor, options: LinearOptions = {}): tf.Tensor {
    if (this.fc1.lora || this.fc2.lora) {
      // LoRA adapters live in Linear.call, so go through the sublayers.
      return tf.tidy(() => {
        const h = activation(this.hiddenAct, this.fc1.call(x));
        return residual === undefined
          ? this.fc2.call(h)
          : this.fc2.callWithResidual(h, residual, options);
      });
    }
    return mlp(
      x,
      {
        fc1Kernel: this.fc1.kernel.read() as tf.Tensor2D,
        fc1Bias: this.fc1.bias?.read() as tf.Tensor1D,
        fc2Kernel: this.fc2.kernel.read() as tf.Tensor2D,
        fc2Bias: this.fc2.bias?.read() as tf.Tensor1D,
      },
      this.hiddenAct,
      residual,
      options,
    );
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    return firstShape(inputShape);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return this.withBaseConfig({
      hiddenSize: this.hiddenSize,
      intermediateSize: this.intermediateSize,
      hiddenAct: this.hiddenAct,
    });
  }
}
tf.serialization.registerClass(SiglipMLP);
