import * as tf from '@tensorflow/tfjs';
import { SiglipLayer, type Shape, type SiglipLayerArgs, firstShape, splitInputs } from './base.js';
import { SiglipAttention } from './attention.js';
import { type HiddenAct, TANH_GELUS, parseHiddenAct } from './kernels/activations.js';
import {
  type EncoderLayerWeights,
  type LinearWeights,
  layerKernelOverrides,
} from './kernels/overrides.js';
import { LayerNorm } from './layer_norm.js';
import type { Linear } from './linear.js';
import type { LinearOptions } from './kernels/linear.js';
import { SiglipMLP } from './mlp.js';

export interface EncoderLayerArgs extends SiglipLayerArgs {
  hiddenSize: number;
  numHeads: number;
  intermediateSize: number;
  layerNormEps?: number;
  hiddenAct?: HiddenAct;
}

/** The transformer sizes shared by the encoder layers and the pooling head, with defaults filled in. */
export interface TransformerDims {
  hiddenSize: number;
  numHeads: number;
  intermediateSize: number;
  layerNormEps: number;
  hiddenAct: HiddenAct;
}

export function transformerDims(args: EncoderLayerArgs): TransformerDims {
  return {
    hiddenSize: args.hiddenSize,
    numHeads: args.numHeads,
    intermediateSize: args.intermediateSize,
    layerNormEps: args.layerNormEps ?? 1e-6,
    hiddenAct: args.hiddenAct ?? 'gelu_pytorch_tanh',
  };
}

/**
 * `SiglipEncoderLayer` (pre-LN): `x = x + self_attn(layer_norm1(x), mask); x = x + mlp(layer_norm2(x))`.
 * Inputs: `x` or `[x, keyMask]`.
 */
export class SiglipEncoderLayer extends SiglipLayer {
  static readonly className = 'SiglipEncoderLayer';
  readonly hiddenSize: number;
  readonly numHeads: number;
  readonly intermediateSize: number;
  readonly layerNormEps: number;
  readonly hiddenAct: HiddenAct;
  readonly layerNorm1: LayerNorm;
  readonly selfAttn: SiglipAttention;
  readonly layerNorm2: LayerNorm;
  readonly mlp: SiglipMLP;

  constructor(args: EncoderLayerArgs) {
    super(args);
    this.hiddenSize = args.hiddenSize;
    this.numHeads = args.numHeads;
    this.intermediateSize = args.intermediateSize;
    this.layerNormEps = args.layerNormEps ?? 1e-6;
    this.hiddenAct = parseHiddenAct(args.hiddenAct ?? 'gelu_pytorch_tanh');
    const weightInit = args.weightInit;
    this.layerNorm1 = this.sublayer(
      new LayerNorm({ name: 'layer_norm1', epsilon: this.layerNormEps, weightInit }),
    );
    this.selfAttn = this.sublayer(
      new SiglipAttention({
        name: 'self_attn',
        hiddenSize: args.hiddenSize,
        numHeads: args.numHeads,
        weightInit,
      }),
    );
    this.layerNorm2 = this.sublayer(
      new LayerNorm({ name: 'layer_norm2', epsilon: this.layerNormEps, weightInit }),
    );
    this.mlp = this.sublayer(
      new SiglipMLP({
        name: 'mlp',
        hiddenSize: args.hiddenSize,
        intermediateSize: args.intermediateSize,
        hiddenAct: this.hiddenAct,
        weightInit,
      }),
    );
  }

  override build(inputShape: Shape | Shape[]): void {
    const shape = firstShape(inputShape);
    for (const layer of [this.layerNorm1, this.selfAttn, this.layerNorm2, this.mlp]) {
      this.buildSublayer(layer, shape);
    }
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const [x, keyMask] = splitInputs(inputs);
      const wholeLayer = layerKernelOverrides()?.encoderLayer;
      const weights = wholeLayer && this.wholeLayerWeights();
      const whole =
        weights &&
        wholeLayer(x, weights, {
          numHeads: this.numHeads,
          layerNormEps: this.layerNormEps,
          keyMask,
        });
      return whole ?? this.mlpBlock(this.attentionBlock(x, keyMask));
    });
  }

  /**
   * The layer as ops whose gradients are the layer's but whose output is not: fc2's product is skipped and the
   * output holds `h + 0` (see `LinearOptions.outputUnused`). For a layer recomputed in the backward pass only for
   * its gradients (gradient checkpointing, `recomputeInBackward`): nothing there needs fc2's output, so the
   * recompute costs the layer without its largest product, about 30 % of its arithmetic for SigLIP's MLP ratio.
   */
  callForGradients(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const [x, keyMask] = splitInputs(inputs);
      return this.mlpBlock(this.attentionBlock(x, keyMask), { outputUnused: true });
    });
  }

  /**
   * The weights for a backend's one-op encoder layer (the native backend at inference), or undefined where that op
   * would compute something else: a LoRA adapter, a linear without bias, an activation other than GELU-tanh.
   */
  wholeLayerWeights(): EncoderLayerWeights | undefined {
    if (!TANH_GELUS.has(this.hiddenAct)) return undefined;
    const attn = this.selfAttn;
    const linears = [attn.qProj, attn.kProj, attn.vProj, attn.outProj, this.mlp.fc1, this.mlp.fc2];
    if (linears.some((l) => l.lora !== undefined || l.bias === undefined)) return undefined;
    const lw = (l: Linear): LinearWeights => ({
      kernel: l.kernel.read() as tf.Tensor2D,
      bias: (l.bias as tf.LayerVariable).read() as tf.Tensor1D,
    });
    const ln = (l: LayerNorm) => ({
      gamma: l.gamma.read() as tf.Tensor1D,
      beta: l.beta.read() as tf.Tensor1D,
    });
    return {
      layerNorm1: ln(this.layerNorm1),
      qProj: lw(attn.qProj),
      kProj: lw(attn.kProj),
      vProj: lw(attn.vProj),
      outProj: lw(attn.outProj),
      layerNorm2: ln(this.layerNorm2),
      fc1: lw(this.mlp.fc1),
      fc2: lw(this.mlp.fc2),
    };
  }

  /** The first residual block, `x + self_attn(layer_norm1(x), mask)` (the add may be fused into out_proj). */
  attentionBlock(x: tf.Tensor, keyMask?: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const normed = this.layerNorm1.call(x);
      return this.selfAttn.callWithResidual(keyMask ? [normed, keyMask] : normed, x);
    });
  }

  /** The second residual block, `h + mlp(layer_norm2(h))` (the add may be fused into fc2). */
  mlpBlock(h: tf.Tensor, options: LinearOptions = {}): tf.Tensor {
    return tf.tidy(() => this.mlp.callWithResidual(this.layerNorm2.call(h), h, options));
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    return firstShape(inputShape);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return this.withBaseConfig({
      hiddenSize: this.hiddenSize,
      numHeads: this.numHeads,
      intermediateSize: this.intermediateSize,
      layerNormEps: this.layerNormEps,
      hiddenAct: this.hiddenAct,
    });
  }
}
tf.serialization.registerClass(SiglipEncoderLayer);
