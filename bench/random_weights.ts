import * as tf from '@tensorflow/tfjs';
import { fillUniform } from './xorshift.js';

/**
 * Fills every weight of a LayersModel with pseudo-random values (uniform, scaled like the usual 0.02-ish init;
 * LayerNorm scales near 1), from one xorshift stream (./xorshift.ts).
 */
export function fillRandom(model: tf.LayersModel, seed = 1234): void {
  let s = seed;
  for (const w of model.weights) {
    const shape = w.shape.map((d) => d ?? 1);
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    s = w.originalName.endsWith('/gamma')
      ? fillUniform(data, s, 1, 0.1)
      : fillUniform(data, s, 0, 0.04);
    w.write(tf.tensor(data, shape));
  }
}
