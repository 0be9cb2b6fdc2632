import * as tf from '@tensorflow/tfjs';
import { SiglipLayer, type Shape, firstShape, splitInputs } from './base.js';
import {
  type EncoderLayerArgs,
  SiglipEncoderLayer,
  type TransformerDims,
  transformerDims,
} from './encoder_layer.js';
import { recomputeInBackward } from './kernels/recompute.js';

export interface EncoderArgs extends EncoderLayerArgs {
  numLayers: number;
}

/**
 * One encoder layer as two recomputed blocks (attention, MLP): the backward pass then holds the activations of
 * half a layer at a time (so400m at batch 8: about 0.3 GiB instead of 0.6) for one more saved hidden state.
 */
function recomputedLayer(layer: SiglipEncoderLayer, x: tf.Tensor, keyMask?: tf.Tensor): tf.Tensor {
  const attnVars = [...layer.layerNorm1.variablesRead(), ...layer.selfAttn.variablesRead()];
  const mlpVars = [...layer.layerNorm2.variablesRead(), ...layer.mlp.variablesRead()];
  const h = recomputeInBackward(
    ([t, m]) => layer.attentionBlock(t, m),
    keyMask ? [x, keyMask] : [x],
    attnVars,
  );
  return recomputeInBackward(([t]) => layer.mlpBlock(t), [h], mlpVars);
}

/**
 * `SiglipEncoder`: `layers.0 … layers.{n-1}` applied in turn. Inputs: `x` or `[x, keyMask]`.
 * Outputs the hidden state after every layer (`n` tensors; the last is the encoder output), so a model can
 * expose `hidden_states` without running anything twice.
 */
export class SiglipEncoder extends SiglipLayer {
  static readonly className = 'SiglipEncoder';
  readonly dims: TransformerDims;
  readonly numLayers: number;
  readonly layers: SiglipEncoderLayer[];
  /**
   * Gradient checkpointing (not saved with the layer): when on, a gradient computation keeps only the input of
   * each layer's two residual blocks and recomputes their activations in the backward pass. Costs about one more
   * forward pass; bounds a training step's activation memory to half a layer's (see `setGradientCheckpointing`).
   */
  gradientCheckpointing = false;

  constructor(args: EncoderArgs) {
    super(args);
    if (!Number.isInteger(args.numLayers) || args.numLayers < 1) {
      throw new Error(`${this.name}: numLayers must be a positive integer, got ${args.numLayers}`);
    }
    this.dims = transformerDims(args);
    this.numLayers = args.numLayers;
    this.layers = [];
    for (let i = 0; i < args.numLayers; i++) {
      this.layers.push(this.sublayer(new SiglipEncoderLayer({ ...args, name: `layers.${i}` })));
    }
  }

  override build(inputShape: Shape | Shape[]): void {
    const shape = firstShape(inputShape);
    for (const layer of this.layers) this.buildSublayer(layer, shape);
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor[] {
    const [x, keyMask] = splitInputs(inputs);
    const states: tf.Tensor[] = [];
    let h = x;
    for (const layer of this.layers) {
      h = this.gradientCheckpointing
        ? recomputedLayer(layer, h, keyMask)
        : layer.call(keyMask ? [h, keyMask] : h);
      states.push(h);
    }
    return states;
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape[] {
    const shape = firstShape(inputShape);
    return this.layers.map(() => shape);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return this.withBaseConfig({ ...this.dims, numLayers: this.numLayers });
  }
}
tf.serialization.registerClass(SiglipEncoder);
