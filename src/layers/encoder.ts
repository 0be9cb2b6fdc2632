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
   * Gradient checkpointing (not saved with the layer): when on, a gradient computation keeps only each layer's
   * input and recomputes the layer's activations in the backward pass. Costs about one more forward pass; bounds
   * a training step's activation memory to one layer's (see `setGradientCheckpointing`).
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
      const ins = keyMask ? [h, keyMask] : [h];
      // Recomputed per layer, not per residual block: for deep models the extra saved hidden state and its
      // gradient cost more than the smaller block peak saves (so400m at batch 8 ran out of wasm's heap).
      h = this.gradientCheckpointing
        ? recomputeInBackward(
            (t) => layer.call(t.length > 1 ? t : t[0]),
            ins,
            layer.variablesRead(),
            (t) => layer.callForGradients(t.length > 1 ? t : t[0]),
          )
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
