import * as tf from '@tensorflow/tfjs';
import { SiglipLayer, type Shape, firstShape, splitInputs } from './base.js';
import { scaledDotProductAttention } from './kernels/attention.js';
import { linear } from './kernels/linear.js';
import { type EncoderLayerArgs, type TransformerDims, transformerDims } from './encoder_layer.js';
import { LayerNorm } from './layer_norm.js';
import { Linear } from './linear.js';
import { SiglipMLP } from './mlp.js';

export type PoolingHeadArgs = EncoderLayerArgs;

/**
 * `SiglipMultiheadAttentionPoolingHead` (MAP head): a learned `probe` attends over the tokens with
 * `torch.nn.MultiheadAttention`, then `h = h + mlp(layernorm(h))`; the output is `h[:, 0]` `[B, D]`.
 * Inputs: tokens `[B, N, D]`, or `[tokens, keyMask]` (NaFlex padding).
 *
 * Weights: `probe` `[1, 1, D]`; `attention/in_proj/kernel` `[D, 3D]` and `attention/in_proj/bias` `[3D]` hold
 * q, k and v stacked as the PyTorch module does (columns 0:D, D:2D, 2D:3D); `attention/out_proj/*`,
 * `layernorm/*`, `mlp/*`.
 */
export class SiglipMultiheadAttentionPoolingHead extends SiglipLayer {
  static readonly className = 'SiglipMultiheadAttentionPoolingHead';
  readonly dims: TransformerDims;
  readonly outProj: Linear;
  readonly layernorm: LayerNorm;
  readonly mlp: SiglipMLP;
  probe!: tf.LayerVariable;
  inProjKernel!: tf.LayerVariable;
  inProjBias!: tf.LayerVariable;

  constructor(args: PoolingHeadArgs) {
    super(args);
    this.dims = transformerDims(args);
    const weightInit = args.weightInit;
    this.outProj = this.sublayer(
      new Linear({ name: 'out_proj', units: args.hiddenSize, weightInit }),
    );
    this.layernorm = this.sublayer(
      new LayerNorm({ name: 'layernorm', epsilon: args.layerNormEps ?? 1e-6, weightInit }),
    );
    this.mlp = this.sublayer(
      new SiglipMLP({
        name: 'mlp',
        hiddenSize: args.hiddenSize,
        intermediateSize: args.intermediateSize,
        hiddenAct: args.hiddenAct,
        weightInit,
      }),
    );
  }

  override build(inputShape: Shape | Shape[]): void {
    const d = this.dims.hiddenSize;
    this.probe = this.addParam('probe', [1, 1, d], 'embedding');
    this.inProjKernel = this.addParam('attention/in_proj/kernel', [d, 3 * d], 'kernel');
    this.inProjBias = this.addParam('attention/in_proj/bias', [3 * d], 'zeros');
    // out_proj lives under attention/ as in the PyTorch module.
    const shape = firstShape(inputShape);
    const queryShape: Shape = [shape[0], 1, d];
    this.buildSublayer(this.outProj, queryShape, 'attention/out_proj');
    this.buildSublayer(this.layernorm, queryShape);
    this.buildSublayer(this.mlp, queryShape);
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const [x, keyMask] = splitInputs(inputs);
      const d = this.dims.hiddenSize;
      const batch = x.shape[0];
      const kernel = this.inProjKernel.read() as tf.Tensor2D;
      const bias = this.inProjBias.read() as tf.Tensor1D;
      const probe = this.probe.read().reshape([1, d]) as tf.Tensor2D;
      const q = linear(probe, kernel.slice([0, 0], [d, d]), bias.slice(0, d) as tf.Tensor1D);
      const kv = linear(x, kernel.slice([0, d], [d, 2 * d]), bias.slice(d, 2 * d) as tf.Tensor1D);
      const [k, v] = tf.split(kv, 2, -1);
      const query = q.reshape([1, 1, d]).tile([batch, 1, 1]);
      const attended = scaledDotProductAttention(query, k, v, this.dims.numHeads, keyMask);
      const h = this.outProj.call(attended);
      const out = h.add(this.mlp.call(this.layernorm.call(h)));
      return out.reshape([batch, d]);
    });
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const shape = firstShape(inputShape);
    return [shape[0], this.dims.hiddenSize];
  }

  override getConfig(): tf.serialization.ConfigDict {
    return this.withBaseConfig({ ...this.dims });
  }
}
tf.serialization.registerClass(SiglipMultiheadAttentionPoolingHead);
