/**
 * The benchmarks' random weights: a xorshift32 stream in plain JavaScript (drawing 1.1 B values through
 * tf.random* takes minutes).
 */

/**
 * Fills `data` with `offset + scale * u`, u uniform in [-0.5, 0.5), from the xorshift32 stream at `seed` (0 counts
 * as 1). Returns the stream's next state: pass it as the next call's seed to continue the same stream.
 */
export function fillUniform(
  data: Float32Array,
  seed: number,
  offset: number,
  scale: number,
): number {
  let s = seed >>> 0 || 1;
  for (let i = 0; i < data.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    data[i] = offset + scale * ((s >>> 0) / 4294967296 - 0.5);
  }
  return s >>> 0 || 1;
}
