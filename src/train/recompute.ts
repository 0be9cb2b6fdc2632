import type * as tf from '@tensorflow/tfjs';
import { SiglipLayer } from '../layers/base.js';
import { SiglipEncoder } from '../layers/encoder.js';
import type { SiglipModel } from '../model/siglip_model.js';

function encoders(layers: readonly tf.layers.Layer[]): SiglipEncoder[] {
  const out: SiglipEncoder[] = [];
  const visit = (l: tf.layers.Layer) => {
    if (l instanceof SiglipEncoder) out.push(l);
    else if (l instanceof SiglipLayer) l.sublayers.forEach(visit);
  };
  layers.forEach(visit);
  return out;
}

/**
 * Turns gradient checkpointing on or off in every encoder of the model: a training step then keeps only each
 * encoder layer's input and recomputes the layer in the backward pass (about one more forward pass per step; the
 * activations of one layer instead of all). This is what lets full-size models train inside wasm's 4 GiB heap.
 * Returns the number of encoders changed.
 */
export function setGradientCheckpointing(model: SiglipModel, on: boolean): number {
  const found = Object.values(model.parts).flatMap((m) => (m ? encoders(m.layers) : []));
  for (const e of found) e.gradientCheckpointing = on;
  return found.length;
}
