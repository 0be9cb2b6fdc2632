import * as tf from '@tensorflow/tfjs';

/**
 * Fills every weight of a LayersModel with pseudo-random values (uniform, scaled like the usual 0.02-ish init;
 * LayerNorm scales near 1). A fast xorshift in plain JS: drawing 1.1 B values through tf.random* takes minutes.
 */
export function fillRandom(model: tf.LayersModel, seed = 1234): void {
  let s = seed >>> 0 || 1;
  for (const w of model.weights) {
    const shape = w.shape.map((d) => d ?? 1);
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    const isGamma = w.originalName.endsWith('/gamma');
    for (let i = 0; i < n; i++) {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      const u = (s >>> 0) / 4294967296 - 0.5;
      data[i] = isGamma ? 1 + 0.1 * u : 0.04 * u;
    }
    w.write(tf.tensor(data, shape));
  }
}
