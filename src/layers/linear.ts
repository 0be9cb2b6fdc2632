import * as tf from '@tensorflow/tfjs';
import { SiglipLayer, type Shape, type SiglipLayerArgs, checkLastDim, firstShape } from './base.js';
import {
  type LinearOptions,
  type LowRankUpdate,
  linear,
  linearWithResidual,
} from './kernels/linear.js';

/** A LoRA adapter on a Linear layer: `y += (x A) B * scale`. */
export interface LinearAdapter {
  a: tf.LayerVariable;
  b: tf.LayerVariable;
  scale: number;
}

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
  /**
   * Optional low-rank adapter (LoRA, see src/train/lora.ts): when set, `call` adds `(x A) B * scale` to the
   * output. A is `[in, rank]`, B is `[rank, out]`. Not saved with the layer; merge it into the kernel to keep it.
   */
  lora?: LinearAdapter;

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

  override variablesRead(): tf.Variable[] {
    const lora = this.lora;
    const own = super.variablesRead();
    return lora ? [...own, lora.a.read() as tf.Variable, lora.b.read() as tf.Variable] : own;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    checkLastDim(this.name, x.shape, this.kernel.shape[0] as number);
    return linear(
      x,
      this.kernel.read() as tf.Tensor2D,
      this.bias?.read() as tf.Tensor1D | undefined,
      this.lowRank(),
    );
  }

  /** `residual + call(x)` (fused into the matMul where the backend can; see `linearWithResidual`). */
  callWithResidual(x: tf.Tensor, residual: tf.Tensor, options: LinearOptions = {}): tf.Tensor {
    checkLastDim(this.name, x.shape, this.kernel.shape[0] as number);
    return linearWithResidual(
      x,
      this.kernel.read() as tf.Tensor2D,
      this.bias?.read() as tf.Tensor1D | undefined,
      residual,
      this.lowRank(),
      options,
    );
  }

  private lowRank(): LowRankUpdate | undefined {
    const lora = this.lora;
    return lora
      ? { a: lora.a.read() as tf.Tensor2D, b: lora.b.read() as tf.Tensor2D, scale: lora.scale }
      : undefined;
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
