// Checkpoint layout -> TF.js layout on plain arrays (no tensors, so nothing is uploaded to a backend).
import type { WeightTransform } from '../src/model/weight_map.js';

/** `[rows, cols]` -> `[cols, rows]`, in cache-friendly blocks. */
export function transpose2d(src: Float32Array, rows: number, cols: number): Float32Array {
  if (src.length !== rows * cols) {
    throw new Error(`transpose2d: ${src.length} values do not make a [${rows}, ${cols}] matrix`);
  }
  const out = new Float32Array(src.length);
  const B = 64;
  for (let r0 = 0; r0 < rows; r0 += B) {
    const r1 = Math.min(rows, r0 + B);
    for (let c0 = 0; c0 < cols; c0 += B) {
      const c1 = Math.min(cols, c0 + B);
      for (let r = r0; r < r1; r++) {
        const base = r * cols;
        for (let c = c0; c < c1; c++) out[c * rows + r] = src[base + c];
      }
    }
  }
  return out;
}

/** Conv2d weight `[out, in, kh, kw]` -> `[kh, kw, in, out]`. */
export function convToHwio(src: Float32Array, shape: readonly number[]): Float32Array {
  const [o, i, h, w] = shape;
  if (shape.length !== 4 || src.length !== o * i * h * w) {
    throw new Error(`convToHwio: ${src.length} values do not make a [${shape.join(', ')}] kernel`);
  }
  const out = new Float32Array(src.length);
  for (let a = 0; a < o; a++) {
    for (let b = 0; b < i; b++) {
      for (let y = 0; y < h; y++) {
        const from = ((a * i + b) * h + y) * w;
        for (let x = 0; x < w; x++) out[((y * w + x) * i + b) * o + a] = src[from + x];
      }
    }
  }
  return out;
}

/** Applies a weight map transform to a checkpoint tensor of shape `hfShape`. */
export function toTfLayout(
  src: Float32Array,
  hfShape: readonly number[],
  transform: WeightTransform,
): Float32Array {
  switch (transform) {
    case 'none':
      return src;
    case 'transpose':
      return transpose2d(src, hfShape[0], hfShape[1]);
    case 'conv':
      return convToHwio(src, hfShape);
  }
}
