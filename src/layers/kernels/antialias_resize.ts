/**
 * Antialiased bilinear resizing as interpolation matrices, matching PyTorch's
 * `F.interpolate(mode='bilinear', align_corners=False, antialias=True)`.
 *
 * Along one axis, output sample `i` of a resize from `inSize` to `outSize` sits at `center = scale * (i + 0.5)`
 * in input coordinates (`scale = inSize / outSize`). Input sample `j` (centred at `j + 0.5`) gets the triangle
 * filter weight `max(0, 1 - |j + 0.5 - center| / s)` with `s = max(scale, 1)`: when downscaling the filter widens
 * with the scale (antialiasing, as PIL does), when upscaling it is ordinary bilinear interpolation. Inputs outside
 * `[0, inSize)` are dropped and the remaining weights are normalised to sum to 1 (which also reproduces the edge
 * clamping of `align_corners=False`).
 *
 * A 2-D resize is separable: `out = R · table · Cᵀ` per channel, with `R` `[outH, inH]` and `C` `[outW, inW]`.
 * Everything here is float64; callers round once to float32.
 */

/** `[outSize, inSize]` row-major float64 weights of the antialiased bilinear resize along one axis. */
export function antialiasBilinearWeights(inSize: number, outSize: number): Float64Array {
  if (!Number.isInteger(inSize) || inSize < 1 || !Number.isInteger(outSize) || outSize < 1) {
    throw new Error(
      `antialiasBilinearWeights: sizes must be positive integers, got ${inSize} -> ${outSize}`,
    );
  }
  const scale = inSize / outSize;
  // Half-width of the filter's support, and the factor that maps input distances onto the unit triangle.
  const support = scale >= 1 ? scale : 1;
  const invScale = scale >= 1 ? 1 / scale : 1;
  const out = new Float64Array(outSize * inSize);
  for (let i = 0; i < outSize; i++) {
    const center = scale * (i + 0.5);
    // Inputs whose weight can be non-zero: j + 0.5 in (center - support, center + support).
    const first = Math.max(Math.floor(center - support + 0.5), 0);
    const end = Math.min(Math.floor(center + support + 0.5), inSize);
    let total = 0;
    for (let j = first; j < end; j++) {
      const w = Math.max(0, 1 - Math.abs((j - center + 0.5) * invScale));
      out[i * inSize + j] = w;
      total += w;
    }
    if (total !== 0) {
      for (let j = first; j < end; j++) out[i * inSize + j] /= total;
    }
  }
  return out;
}

/**
 * The matrix `[outH * outW, inH * inW]` (float64, row-major) that resizes a row-major `inH x inW` grid to a
 * row-major `outH x outW` grid: the Kronecker product `R ⊗ C` of the two axes' weights, so that
 * `resized[(y, x)] = Σ R[y, gy] · C[x, gx] · table[(gy, gx)]`.
 */
export function antialiasBilinearMatrix(
  inH: number,
  inW: number,
  outH: number,
  outW: number,
): Float64Array {
  const rows = antialiasBilinearWeights(inH, outH);
  const cols = antialiasBilinearWeights(inW, outW);
  const inN = inH * inW;
  const out = new Float64Array(outH * outW * inN);
  for (let y = 0; y < outH; y++) {
    for (let gy = 0; gy < inH; gy++) {
      const r = rows[y * inH + gy];
      if (r === 0) continue;
      for (let x = 0; x < outW; x++) {
        const base = (y * outW + x) * inN + gy * inW;
        for (let gx = 0; gx < inW; gx++) out[base + gx] = r * cols[x * inW + gx];
      }
    }
  }
  return out;
}
