import * as tf from '@tensorflow/tfjs';
import { SiglipLayer, type Shape, type SiglipLayerArgs, firstShape, splitInputs } from './base.js';
import { scaledDotProductAttention } from './kernels/attention.js';
import { Linear } from './linear.js';

export interface AttentionArgs extends SiglipLayerArgs {
  hiddenSize: number;
  numHeads: number;
}

/**
 * `SiglipAttention`: multi-head self-attention with `q_proj`, `k_proj`, `v_proj`, `out_proj` (all with bias).
 * Inputs: `x` `[B, N, D]`, or `[x, keyMask]` with keyMask `[B, N]` (1 attend, 0 padding).
 */
export class SiglipAttention extends SiglipLayer {
  static readonly className = 'SiglipAttention';
  readonly hiddenSize: number;
  readonly numHeads: number;
  readonly qProj: Linear;
  readonly kProj: Linear;
  readonly vProj: Linear;
  readonly outProj: Linear;

  constructor(args: AttentionArgs) {
    super(args);
    if (args.hiddenSize % args.numHeads !== 0) {
      throw new Error(
        `${this.name}: hidden size ${args.hiddenSize} is not divisible by the number of heads ${args.numHeads}`,
      );
    }
    this.hiddenSize = args.hiddenSize;
    this.numHeads = args.numHeads;
    const sub = (name: string) =>
      this.sublayer(new Linear({ name, units: args.hiddenSize, weightInit: args.weightInit }));
    this.qProj = sub('q_proj');
    this.kProj = sub('k_proj');
    this.vProj = sub('v_proj');
    this.outProj = sub('out_proj');
  }

  override build(inputShape: Shape | Shape[]): void {
    const shape = firstShape(inputShape);
    for (const proj of [this.qProj, this.kProj, this.vProj, this.outProj]) {
      this.buildSublayer(proj, shape);
    }
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => this.outProj.call(this.attend(inputs)));
  }

  /** `residual + call(inputs)` (the encoder layer's first block; the add may be fused into out_proj). */
  callWithResidual(inputs: tf.Tensor | tf.Tensor[], residual: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.outProj.callWithResidual(this.attend(inputs), residual));
  }

  /** The heads' attention before out_proj, `[B, N, D]`. */
  private attend(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const [x, keyMask] = splitInputs(inputs);
    const q = this.qProj.call(x);
    const k = this.kProj.call(x);
    const v = this.vProj.call(x);
    return scaledDotProductAttention(q, k, v, this.numHeads, keyMask);
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    return firstShape(inputShape);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return this.withBaseConfig({ hiddenSize: this.hiddenSize, numHeads: this.numHeads });
  }
}
tf.serialization.registerClass(SiglipAttention);
