/**
 * One entry point for every kind of image input. Node: file paths and encoded bytes (decoded by sharp).
 * Anywhere: `RgbImage`, `ImageData`-like RGBA, `[H, W, 3]` uint8 tensors. Browser: canvas image sources.
 */
import {
  imageFromCanvasSource,
  imageFromImageData,
  imageFromTensor,
  isImageDataLike,
  isTensorLike,
} from './decode_browser.js';
import type { ImageDataLike, TensorLike } from './decode_browser.js';
import { type RgbImage, validateImage } from './image.js';

export type ImageInput =
  string | Uint8Array | RgbImage | ImageDataLike | TensorLike | CanvasImageSource;

function isRgbImage(v: unknown): v is RgbImage {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Partial<RgbImage>;
  return (
    o.data instanceof Uint8Array &&
    typeof o.width === 'number' &&
    typeof o.height === 'number' &&
    o.data.length === o.width * o.height * 3
  );
}

/** Decode / convert one input to RGB. `what` names it in errors (default: the path, or `images[i]`). */
export async function loadImage(input: ImageInput, what?: string): Promise<RgbImage> {
  if (typeof input === 'string' || (input instanceof Uint8Array && !isRgbImage(input))) {
    if (typeof process === 'undefined' || !process.versions?.node) {
      throw new Error(
        `${what ?? 'image'}: file paths and encoded bytes are decoded in Node only; in a browser pass an image element, ImageBitmap or ImageData`,
      );
    }
    const { loadImageNode } = await import('./decode_node.js');
    return loadImageNode(input, what);
  }
  const name = what ?? 'image';
  if (isRgbImage(input)) {
    const img = { ...input, source: input.source ?? what };
    validateImage(img, name);
    return img;
  }
  if (isTensorLike(input)) return imageFromTensor(input, name);
  if (isImageDataLike(input)) {
    if (input.data.length === input.width * input.height * 3) {
      const img = {
        data: Uint8Array.from(input.data),
        width: input.width,
        height: input.height,
        source: name,
      };
      validateImage(img, name);
      return img;
    }
    return imageFromImageData(input, name);
  }
  if (typeof input === 'object' && input !== null)
    return imageFromCanvasSource(input as CanvasImageSource, name);
  throw new Error(`${name}: unsupported image input of type ${typeof input}`);
}

/** Load several inputs; each is named `images[i]` (or its path) in errors. */
export async function loadImages(inputs: ImageInput[]): Promise<RgbImage[]> {
  if (!Array.isArray(inputs) || inputs.length === 0)
    throw new Error('loadImages: expected a non-empty array of images');
  const out: RgbImage[] = [];
  for (let i = 0; i < inputs.length; i++) {
    const x = inputs[i];
    out.push(await loadImage(x, typeof x === 'string' ? x : `images[${i}]`));
  }
  return out;
}
