/**
 * PIL `Image.resize(..., resample=BILINEAR)` on 8-bit images, reproduced integer for integer (Pillow 9.4,
 * `libImaging/Resample.c`): a separable triangle filter whose support widens by the scale factor when
 * downscaling (so it antialiases), coefficients normalised per output pixel and turned into 22-bit fixed point,
 * horizontal pass first (only over the source rows the vertical pass needs), rounding and clipping to uint8
 * after each pass. Plain TypeScript on interleaved Uint8Array data: identical in Node and the browser.
 */

/** Fixed-point fraction bits of PIL's 8-bit resampler (`32 - 8 - 2`). */
const PRECISION_BITS = 22;
const ONE = 1 << PRECISION_BITS;
const HALF = 1 << (PRECISION_BITS - 1);

/** Filter taps for every output position of one axis. */
interface AxisCoefficients {
  /** Taps per output position (stride of `coeffs`). */
  ksize: number;
  /** First input index for each output position. */
  start: Int32Array;
  /** Number of taps used for each output position. */
  count: Int32Array;
  /** Fixed-point weights, `ksize` per output position. */
  coeffs: Int32Array;
}

function triangle(x: number): number {
  const a = x < 0 ? -x : x;
  return a < 1 ? 1 - a : 0;
}

/** PIL's `precompute_coeffs` for the bilinear filter (support 1) followed by `normalize_coeffs_8bpc`. */
function axisCoefficients(inSize: number, outSize: number): AxisCoefficients {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filterScale; // bilinear support 1.0 times the filter scale
  const ksize = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const coeffs = new Int32Array(outSize * ksize);
  const weights = new Float64Array(ksize);
  const invScale = 1 / filterScale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    // C casts truncate toward zero
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let sum = 0;
    for (let x = 0; x < xmax; x++) {
      const w = triangle((x + xmin - center + 0.5) * invScale);
      weights[x] = w;
      sum += w;
    }
    for (let x = 0; x < xmax; x++) {
      const w = sum !== 0 ? weights[x] / sum : weights[x];
      coeffs[xx * ksize + x] = w < 0 ? Math.trunc(-0.5 + w * ONE) : Math.trunc(0.5 + w * ONE);
    }
    start[xx] = xmin;
    count[xx] = xmax;
  }
  return { ksize, start, count, coeffs };
}

function clip8(v: number): number {
  if (v >= ONE * 256) return 255;
  if (v <= 0) return 0;
  return Math.floor(v / ONE);
}

/**
 * Resizes an interleaved 8-bit image (`channels` values per pixel, row-major `[height, width, channels]`)
 * to `outWidth` x `outHeight` exactly as PIL's `Image.resize((outWidth, outHeight), Image.BILINEAR)` does
 * for an image of the same mode (use it on RGB or L data; PIL premultiplies RGBA first, this does not).
 */
export function resizeBilinearPIL(
  data: Uint8Array,
  width: number,
  height: number,
  channels: number,
  outWidth: number,
  outHeight: number,
): Uint8Array {
  for (const [name, v] of [
    ['width', width],
    ['height', height],
    ['outWidth', outWidth],
    ['outHeight', outHeight],
    ['channels', channels],
  ] as const) {
    if (!Number.isInteger(v) || v < 1) {
      throw new Error(`resizeBilinearPIL: ${name} must be a positive integer, got ${v}`);
    }
  }
  if (data.length !== width * height * channels) {
    throw new Error(
      `resizeBilinearPIL: data has ${data.length} values, expected ${width}x${height}x${channels} = ${width * height * channels}`,
    );
  }
  const needH = outWidth !== width;
  const needV = outHeight !== height;
  if (!needH && !needV) return data.slice();

  const vert = axisCoefficients(height, outHeight);
  // Rows of the source that the vertical pass reads.
  const firstRow = needV ? vert.start[0] : 0;
  const lastRow = needV ? vert.start[outHeight - 1] + vert.count[outHeight - 1] : height;

  let src = data;
  let srcRows = height;
  let rowOffset = 0;
  if (needH) {
    const horiz = axisCoefficients(width, outWidth);
    const rows = lastRow - firstRow;
    const tmp = new Uint8Array(rows * outWidth * channels);
    const { ksize, start, count, coeffs } = horiz;
    for (let y = 0; y < rows; y++) {
      const inRow = (y + firstRow) * width * channels;
      const outRow = y * outWidth * channels;
      for (let xx = 0; xx < outWidth; xx++) {
        const xmin = start[xx];
        const n = count[xx];
        const k = xx * ksize;
        for (let c = 0; c < channels; c++) {
          let ss = HALF;
          let p = inRow + xmin * channels + c;
          for (let x = 0; x < n; x++, p += channels) ss += data[p] * coeffs[k + x];
          tmp[outRow + xx * channels + c] = clip8(ss);
        }
      }
    }
    src = tmp;
    srcRows = rows;
    rowOffset = firstRow;
  }
  if (!needV) return src;

  const out = new Uint8Array(outHeight * outWidth * channels);
  const { ksize, start, count, coeffs } = vert;
  const stride = outWidth * channels;
  for (let yy = 0; yy < outHeight; yy++) {
    const ymin = start[yy] - rowOffset;
    const n = count[yy];
    const k = yy * ksize;
    if (ymin < 0 || ymin + n > srcRows)
      throw new Error('resizeBilinearPIL: internal row bounds error');
    for (let i = 0; i < stride; i++) {
      let ss = HALF;
      let p = ymin * stride + i;
      for (let y = 0; y < n; y++, p += stride) ss += src[p] * coeffs[k + y];
      out[yy * stride + i] = clip8(ss);
    }
  }
  return out;
}
