/**
 * Image preprocessing for SigLIP (fixed resolution) and SigLIP 2 NaFlex, shared by Node and the browser.
 * Input is a decoded 8-bit RGB image (see `decode_node.ts` / `decode_browser.ts`); every image is resized on its
 * own with PIL-exact bilinear resampling (`resize.ts`), rescaled and normalised in float32 as HF's slow
 * `SiglipImageProcessor` / `Siglip2ImageProcessor` do.
 */
import { resizeBilinearPIL } from './resize.js';

/** A decoded image: row-major `[height, width, 3]` uint8 RGB. */
export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
  /** Where it came from (file name, argument index): used in error messages. */
  source?: string;
}

/** The fields of a HF `preprocessor_config.json` that matter here. */
export interface PreprocessorConfigJson {
  image_processor_type?: string;
  do_resize?: boolean;
  do_rescale?: boolean;
  do_normalize?: boolean;
  resample?: number;
  rescale_factor?: number;
  image_mean?: number | number[];
  image_std?: number | number[];
  size?: { height?: number; width?: number; shortest_edge?: number };
  patch_size?: number;
  max_num_patches?: number;
  [key: string]: unknown;
}

/** Settings shared by both processors. */
export interface NormalizeSettings {
  doRescale: boolean;
  rescaleFactor: number;
  doNormalize: boolean;
  mean: [number, number, number];
  std: [number, number, number];
}

export interface FixedResolutionSettings extends NormalizeSettings {
  doResize: boolean;
  height: number;
  width: number;
}

export interface NaFlexSettings extends NormalizeSettings {
  doResize: boolean;
  patchSize: number;
  maxNumPatches: number;
}

const PIL_BILINEAR = 2;

function triple(
  v: number | number[] | undefined,
  def: number,
  field: string,
): [number, number, number] {
  if (v === undefined) return [def, def, def];
  const a = typeof v === 'number' ? [v, v, v] : v;
  if (
    !Array.isArray(a) ||
    a.length !== 3 ||
    a.some((x) => typeof x !== 'number' || !Number.isFinite(x))
  ) {
    throw new Error(
      `preprocessor config: ${field} must be a number or 3 numbers, got ${JSON.stringify(v)}`,
    );
  }
  return [a[0], a[1], a[2]];
}

function positiveInt(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
    throw new Error(
      `preprocessor config: ${field} must be a positive integer, got ${JSON.stringify(v)}`,
    );
  }
  return v;
}

function normalizeSettings(cfg: PreprocessorConfigJson): NormalizeSettings {
  if (cfg.resample !== undefined && cfg.resample !== PIL_BILINEAR) {
    throw new Error(
      `preprocessor config: resample ${cfg.resample} is not supported (only 2 = PIL BILINEAR, used by every SigLIP checkpoint)`,
    );
  }
  const std = triple(cfg.image_std, 0.5, 'image_std');
  if (std.some((s) => s === 0)) throw new Error('preprocessor config: image_std contains 0');
  return {
    doRescale: cfg.do_rescale ?? true,
    rescaleFactor: cfg.rescale_factor ?? 1 / 255,
    doNormalize: cfg.do_normalize ?? true,
    mean: triple(cfg.image_mean, 0.5, 'image_mean'),
    std,
  };
}

/** Settings of a fixed-resolution `SiglipImageProcessor` config (defaults: 224x224, /255, mean=std=0.5). */
function fixedResolutionSettings(cfg: PreprocessorConfigJson): FixedResolutionSettings {
  const size = cfg.size ?? { height: 224, width: 224 };
  return {
    ...normalizeSettings(cfg),
    doResize: cfg.do_resize ?? true,
    height: positiveInt(size.height, 'size.height'),
    width: positiveInt(size.width, 'size.width'),
  };
}

/** Settings of a NaFlex `Siglip2ImageProcessor` config (defaults: patch 16, 256 patches). */
function naflexSettings(cfg: PreprocessorConfigJson, maxNumPatches?: number): NaFlexSettings {
  return {
    ...normalizeSettings(cfg),
    doResize: cfg.do_resize ?? true,
    patchSize: positiveInt(cfg.patch_size ?? 16, 'patch_size'),
    maxNumPatches: positiveInt(maxNumPatches ?? cfg.max_num_patches ?? 256, 'maxNumPatches'),
  };
}

/** True for a NaFlex (`Siglip2ImageProcessor*`) config: it has `max_num_patches` / `patch_size` and no `size`. */
export function isNaFlexConfig(cfg: PreprocessorConfigJson): boolean {
  if (typeof cfg.image_processor_type === 'string')
    return cfg.image_processor_type.startsWith('Siglip2');
  return cfg.max_num_patches !== undefined && cfg.size === undefined;
}

/** Checks an image's fields, naming it in the error. */
export function validateImage(img: RgbImage, what = img.source ?? 'image'): void {
  if (
    !Number.isInteger(img.width) ||
    !Number.isInteger(img.height) ||
    img.width < 1 ||
    img.height < 1
  ) {
    throw new Error(
      `${what}: image is ${img.width}x${img.height}; width and height must be positive integers`,
    );
  }
  if (!(img.data instanceof Uint8Array) || img.data.length !== img.width * img.height * 3) {
    throw new Error(
      `${what}: expected ${img.width}x${img.height}x3 = ${img.width * img.height * 3} RGB bytes, got ${img.data?.length}`,
    );
  }
}

/** The float32 value HF computes for one uint8 channel value: `((v * factor) - mean) / std`, each step in fp32. */
function channelLut(s: NormalizeSettings, c: number): Float32Array {
  const lut = new Float32Array(256);
  const mean = Math.fround(s.mean[c]);
  const std = Math.fround(s.std[c]);
  for (let v = 0; v < 256; v++) {
    let x = s.doRescale ? Math.fround(v * s.rescaleFactor) : v;
    if (s.doNormalize) x = Math.fround(Math.fround(x - mean) / std);
    lut[v] = x;
  }
  return lut;
}

function luts(s: NormalizeSettings): [Float32Array, Float32Array, Float32Array] {
  return [channelLut(s, 0), channelLut(s, 1), channelLut(s, 2)];
}

/** Resize (if needed) an RGB image to `width` x `height` with PIL-exact bilinear. */
function resizeRgb(img: RgbImage, width: number, height: number): RgbImage {
  if (img.width === width && img.height === height) return img;
  return {
    data: resizeBilinearPIL(img.data, img.width, img.height, 3, width, height),
    width,
    height,
    source: img.source,
  };
}

/** Output of the fixed-resolution processor. */
export interface FixedResolutionBatch {
  /** `[B, 3, H, W]` float32, channels first. */
  pixelValues: Float32Array;
  shape: [number, number, number, number];
}

/**
 * SigLIP's `SiglipImageProcessor`: resize to `size` (aspect not kept, no crop), rescale, normalise,
 * channels first. Each image is resized independently, so a batch may mix image sizes.
 */
export class SiglipImageProcessor {
  readonly settings: FixedResolutionSettings;
  private readonly lut: [Float32Array, Float32Array, Float32Array];

  constructor(config: PreprocessorConfigJson = {}) {
    this.settings = fixedResolutionSettings(config);
    this.lut = luts(this.settings);
  }

  /** One image into `out` (length 3*H*W) at `offset`. */
  private processInto(img: RgbImage, out: Float32Array, offset: number, what: string): void {
    validateImage(img, what);
    const { height: H, width: W, doResize } = this.settings;
    if (!doResize && (img.width !== W || img.height !== H)) {
      throw new Error(
        `${what}: do_resize is false but the image is ${img.width}x${img.height}, not ${W}x${H}`,
      );
    }
    const r = resizeRgb(img, W, H);
    const plane = H * W;
    const [l0, l1, l2] = this.lut;
    for (let i = 0; i < plane; i++) {
      out[offset + i] = l0[r.data[3 * i]];
      out[offset + plane + i] = l1[r.data[3 * i + 1]];
      out[offset + 2 * plane + i] = l2[r.data[3 * i + 2]];
    }
  }

  preprocess(images: RgbImage[]): FixedResolutionBatch {
    if (!Array.isArray(images) || images.length === 0) {
      throw new Error('SiglipImageProcessor.preprocess: images must be a non-empty array');
    }
    const { height: H, width: W } = this.settings;
    const per = 3 * H * W;
    const pixelValues = new Float32Array(images.length * per);
    images.forEach((img, i) =>
      this.processInto(img, pixelValues, i * per, img.source ?? `images[${i}]`),
    );
    return { pixelValues, shape: [images.length, 3, H, W] };
  }
}

/**
 * `get_image_size_for_max_num_patches` of HF's Siglip2ImageProcessor: binary search on a scale s in
 * [eps/10, 100] until the interval is narrower than eps; each side becomes `max(p, ceil(side*s/p)*p)`; keeps the
 * largest s whose patch count fits. Returns the target `[height, width]` in pixels.
 */
export function naflexTargetSize(
  height: number,
  width: number,
  patchSize: number,
  maxNumPatches: number,
  eps = 1e-5,
): [number, number] {
  for (const [name, v] of [
    ['height', height],
    ['width', width],
    ['patchSize', patchSize],
    ['maxNumPatches', maxNumPatches],
  ] as const) {
    if (!Number.isInteger(v) || v < 1)
      throw new Error(`naflexTargetSize: ${name} must be a positive integer, got ${v}`);
  }
  const side = (size: number, s: number) =>
    Math.max(patchSize, Math.ceil((size * s) / patchSize) * patchSize);
  let lo = eps / 10;
  let hi = 100;
  while (hi - lo >= eps) {
    const s = (lo + hi) / 2;
    const n = (side(height, s) / patchSize) * (side(width, s) / patchSize);
    if (n <= maxNumPatches) lo = s;
    else hi = s;
  }
  return [side(height, lo), side(width, lo)];
}

/** Output of the NaFlex processor. */
export interface NaFlexBatch {
  /** `[B, maxNumPatches, p*p*3]` float32; each patch flattened as (py, px, c); rows past the image's patches are 0. */
  pixelValues: Float32Array;
  shape: [number, number, number];
  /** `[B, maxNumPatches]`: 1 for real patches, 0 for padding. */
  pixelAttentionMask: Int32Array;
  /** `[B, 2]`: (patch rows, patch columns) of each image. */
  spatialShapes: Int32Array;
}

/**
 * SigLIP 2 NaFlex `Siglip2ImageProcessor`: per image, resize to the largest patch-multiple size keeping the
 * aspect ratio with at most `maxNumPatches` patches, rescale, normalise, patchify, zero-pad to `maxNumPatches`.
 * A batch may mix image sizes: each image is resized on its own and padded.
 */
export class Siglip2ImageProcessor {
  readonly settings: NaFlexSettings;
  private readonly lut: [Float32Array, Float32Array, Float32Array];

  /** `maxNumPatches` overrides the config's `max_num_patches`. */
  constructor(config: PreprocessorConfigJson = {}, maxNumPatches?: number) {
    this.settings = naflexSettings(config, maxNumPatches);
    this.lut = luts(this.settings);
  }

  /** Target size `[height, width]` for an image of the given size. */
  targetSize(height: number, width: number): [number, number] {
    const { patchSize, maxNumPatches } = this.settings;
    return naflexTargetSize(height, width, patchSize, maxNumPatches);
  }

  preprocess(images: RgbImage[]): NaFlexBatch {
    if (!Array.isArray(images) || images.length === 0) {
      throw new Error('Siglip2ImageProcessor.preprocess: images must be a non-empty array');
    }
    const { patchSize: p, maxNumPatches: maxP, doResize } = this.settings;
    const dim = p * p * 3;
    const B = images.length;
    const pixelValues = new Float32Array(B * maxP * dim);
    const pixelAttentionMask = new Int32Array(B * maxP);
    const spatialShapes = new Int32Array(B * 2);
    const [l0, l1, l2] = this.lut;
    images.forEach((img, b) => {
      const what = img.source ?? `images[${b}]`;
      validateImage(img, what);
      let r: RgbImage;
      if (doResize) {
        const [th, tw] = this.targetSize(img.height, img.width);
        r = resizeRgb(img, tw, th);
      } else {
        if (img.width % p !== 0 || img.height % p !== 0) {
          throw new Error(
            `${what}: do_resize is false but ${img.width}x${img.height} is not a multiple of patch ${p}`,
          );
        }
        r = img;
      }
      const nh = r.height / p;
      const nw = r.width / p;
      if (nh * nw > maxP) {
        throw new Error(`${what}: ${nh}x${nw} patches exceed maxNumPatches ${maxP}`);
      }
      spatialShapes[2 * b] = nh;
      spatialShapes[2 * b + 1] = nw;
      const base = b * maxP * dim;
      for (let ph = 0; ph < nh; ph++) {
        for (let pw = 0; pw < nw; pw++) {
          const patch = ph * nw + pw;
          pixelAttentionMask[b * maxP + patch] = 1;
          let o = base + patch * dim;
          for (let py = 0; py < p; py++) {
            let src = ((ph * p + py) * r.width + pw * p) * 3;
            for (let px = 0; px < p; px++, src += 3) {
              pixelValues[o++] = l0[r.data[src]];
              pixelValues[o++] = l1[r.data[src + 1]];
              pixelValues[o++] = l2[r.data[src + 2]];
            }
          }
        }
      }
    });
    return { pixelValues, shape: [B, maxP, dim], pixelAttentionMask, spatialShapes };
  }
}

/** The right processor for a config: NaFlex (`Siglip2ImageProcessor*`) or fixed resolution. */
export function createImageProcessor(
  config: PreprocessorConfigJson,
  opts: { maxNumPatches?: number } = {},
): SiglipImageProcessor | Siglip2ImageProcessor {
  return isNaFlexConfig(config)
    ? new Siglip2ImageProcessor(config, opts.maxNumPatches)
    : new SiglipImageProcessor(config);
}
