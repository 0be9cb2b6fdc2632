// Seeded image augmentation for contrastive fine-tuning, on decoded 8-bit RGB images before the model's own
// preprocessing (which then resizes to the model's input): random resized crop and horizontal flip.
import type { RgbImage } from '../processors/image.js';

export interface AugmentOptions {
  /** Random resized crop: a crop of `[cropScale, 1]` of the area and aspect in [3/4, 4/3] (log-uniform). */
  crop?: boolean;
  /** Smallest crop area as a fraction of the image. Default 0.5. */
  cropScale?: number;
  /** Mirror left-right with probability 1/2 (avoid when captions say left / right). */
  flip?: boolean;
}

export function augmentationEnabled(o: AugmentOptions): boolean {
  return Boolean(o.crop || o.flip);
}

/** A random source for one sample of one epoch: the same seed, epoch and sample give the same augmentation. */
export function sampleRandom(seed: number, epoch: number, sample: number): () => number {
  // splitmix32-style mixing of the three numbers into one mulberry32 state.
  let a = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(epoch + 1, 0xc2b2ae35) ^ sample;
  a = Math.imul(a ^ (a >>> 16), 0x45d9f3b);
  a = (a ^ (a >>> 16)) >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The crop box torchvision's RandomResizedCrop draws (10 tries, then the centre crop of the clamped aspect). */
export function randomResizedCropBox(
  width: number,
  height: number,
  rand: () => number,
  scale: [number, number] = [0.5, 1],
  ratio: [number, number] = [3 / 4, 4 / 3],
): { left: number; top: number; width: number; height: number } {
  const area = width * height;
  const logLo = Math.log(ratio[0]);
  const logHi = Math.log(ratio[1]);
  for (let i = 0; i < 10; i++) {
    const target = area * (scale[0] + rand() * (scale[1] - scale[0]));
    const aspect = Math.exp(logLo + rand() * (logHi - logLo));
    const w = Math.round(Math.sqrt(target * aspect));
    const h = Math.round(Math.sqrt(target / aspect));
    if (w > 0 && h > 0 && w <= width && h <= height) {
      const top = Math.floor(rand() * (height - h + 1));
      const left = Math.floor(rand() * (width - w + 1));
      return { left, top, width: w, height: h };
    }
  }
  const inRatio = width / height;
  let w = width;
  let h = height;
  if (inRatio < ratio[0]) h = Math.round(w / ratio[0]);
  else if (inRatio > ratio[1]) w = Math.round(h * ratio[1]);
  return {
    left: Math.floor((width - w) / 2),
    top: Math.floor((height - h) / 2),
    width: w,
    height: h,
  };
}

function cropRgb(img: RgbImage, box: ReturnType<typeof randomResizedCropBox>): RgbImage {
  const out = new Uint8Array(box.width * box.height * 3);
  for (let y = 0; y < box.height; y++) {
    const src = ((box.top + y) * img.width + box.left) * 3;
    out.set(img.data.subarray(src, src + box.width * 3), y * box.width * 3);
  }
  return { data: out, width: box.width, height: box.height, source: img.source };
}

function flipRgb(img: RgbImage): RgbImage {
  const out = new Uint8Array(img.data.length);
  const { width: w, height: h } = img;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const s = (y * w + x) * 3;
      const d = (y * w + (w - 1 - x)) * 3;
      out[d] = img.data[s];
      out[d + 1] = img.data[s + 1];
      out[d + 2] = img.data[s + 2];
    }
  }
  return { data: out, width: w, height: h, source: img.source };
}

/** Applies the enabled augmentations with draws from `rand` (crop first, then flip). */
export function augmentImage(img: RgbImage, o: AugmentOptions, rand: () => number): RgbImage {
  let out = img;
  if (o.crop) {
    const s = o.cropScale ?? 0.5;
    out = cropRgb(out, randomResizedCropBox(out.width, out.height, rand, [s, 1]));
  }
  if (o.flip && rand() < 0.5) out = flipRgb(out);
  return out;
}
