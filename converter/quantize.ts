// Weight storage for TF.js weight manifests: float32 as is, float16 and uint8 in the layout that tfjs-core's
// `io.decodeWeights` reads (`quantization: {dtype: 'float16'}` or `{dtype: 'uint8', min, scale}`), so that
// `tf.loadLayersModel` dequantizes them to float32 at load time.

import type { StorageDtype } from '../src/loader/manifest.js';

export { type StorageDtype, STORAGE_DTYPES } from '../src/loader/manifest.js';

/** The `quantization` field of a TF.js weights manifest entry. */
export interface ManifestQuantization {
  dtype: 'float16' | 'uint8';
  min?: number;
  scale?: number;
  original_dtype?: 'float32';
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE 754 binary16 bits of a float32, rounded to nearest even (overflow to ±Inf, NaN kept). */
export function float32ToFloat16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // Inf / NaN
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow
  if (e <= 0) {
    // Subnormal half (or zero): shift the mantissa with the implicit bit.
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let h = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    if (rest > half || (rest === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++; // a carry into the exponent is still correct
  return sign | h;
}

/** Encodes float32 values as binary16 (little-endian bytes). */
export function encodeFloat16(values: Float32Array): Uint8Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = float32ToFloat16Bits(values[i]);
  return new Uint8Array(out.buffer);
}

/**
 * Affine uint8 parameters for values in [lo, hi], as the TF.js converter computes them: the range is widened to
 * hold 0 and nudged so that 0 is exactly representable; `value = q * scale + min`.
 */
export function uint8Params(lo: number, hi: number): { min: number; scale: number } {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) {
    throw new Error(`cannot quantize non-finite values (range [${lo}, ${hi}]) to uint8`);
  }
  lo = Math.min(lo, 0);
  hi = Math.max(hi, 0);
  const scale = (hi - lo) / 255;
  if (scale === 0) return { min: 0, scale: 1 };
  // TF.js decodes `q * scale + min` in float64: with this min, q = zero gives exactly 0 (JSON keeps doubles).
  const s32 = Math.fround(scale);
  const zero = Math.round(-lo / s32);
  return { min: -zero * s32, scale: s32 };
}

/** Minimum and maximum of some values (NaN and ±Inf propagate to a non-finite result). */
export function valueRange(values: Float32Array, into = { lo: Infinity, hi: -Infinity }) {
  let { lo, hi } = into;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
    if (Number.isNaN(v)) lo = hi = NaN;
  }
  return { lo, hi };
}

/** Quantizes values with given uint8 parameters (clamped to 0..255). */
export function quantizeUint8With(values: Float32Array, min: number, scale: number): Uint8Array {
  const bytes = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const q = Math.round((values[i] - min) / scale);
    bytes[i] = q < 0 ? 0 : q > 255 ? 255 : q;
  }
  return bytes;
}

/** Affine uint8 quantization of one whole tensor. */
export function quantizeUint8(values: Float32Array): {
  bytes: Uint8Array;
  min: number;
  scale: number;
} {
  const { lo, hi } = valueRange(values);
  const { min, scale } = uint8Params(lo, hi);
  return { bytes: quantizeUint8With(values, min, scale), min, scale };
}

/** Whether a weight of this shape is quantized under a storage dtype (uint8 keeps 1-D tensors in float32). */
export function isQuantized(dtype: StorageDtype, shape: readonly number[]): boolean {
  if (dtype === 'float32') return false;
  if (dtype === 'uint8') return shape.length >= 2;
  return true;
}

/** Bytes a weight takes in the shards. */
export function storedBytes(dtype: StorageDtype, shape: readonly number[]): number {
  const n = shape.reduce((a, b) => a * b, 1);
  if (!isQuantized(dtype, shape)) return 4 * n;
  return dtype === 'float16' ? 2 * n : n;
}

/** Encodes one float32 weight for storage; returns its bytes and the manifest's quantization field. */
export function encodeWeight(
  dtype: StorageDtype,
  values: Float32Array,
  shape: readonly number[],
): { bytes: Uint8Array; quantization?: ManifestQuantization } {
  if (!isQuantized(dtype, shape)) {
    return { bytes: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) };
  }
  if (dtype === 'float16') {
    return {
      bytes: encodeFloat16(values),
      quantization: { dtype: 'float16', original_dtype: 'float32' },
    };
  }
  const { bytes, min, scale } = quantizeUint8(values);
  return { bytes, quantization: { dtype: 'uint8', min, scale, original_dtype: 'float32' } };
}
