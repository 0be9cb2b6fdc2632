/**
 * Decoded-image inputs that need no Node APIs: `ImageData`-like RGBA buffers, `[H, W, 3]` uint8 tensors, and
 * (in a browser) anything a canvas can draw: HTMLImageElement, ImageBitmap, HTMLCanvasElement, OffscreenCanvas,
 * VideoFrame. The canvas path draws at the source's natural size and reads the pixels back; browsers apply the
 * EXIF orientation when decoding and may colour-manage, so canvas pixels can differ slightly from PIL's.
 */
import type { RgbImage } from './image.js';

/** `ImageData` and look-alikes: RGBA, row-major, 4 bytes per pixel. */
export interface ImageDataLike {
  data: Uint8ClampedArray | Uint8Array;
  width: number;
  height: number;
}

/** A `[H, W, 3]` (or `[H, W, 4]`, alpha dropped) uint8 tensor: a tf.Tensor3D or a plain `{data, shape}`. */
export interface TensorLike {
  shape: number[];
  dtype?: string;
  data?: ArrayLike<number>;
  dataSync?: () => ArrayLike<number>;
}

export function isImageDataLike(v: unknown): v is ImageDataLike {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Partial<ImageDataLike>;
  return (
    (o.data instanceof Uint8ClampedArray || o.data instanceof Uint8Array) &&
    typeof o.width === 'number' &&
    typeof o.height === 'number' &&
    !('shape' in o)
  );
}

export function isTensorLike(v: unknown): v is TensorLike {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Partial<TensorLike>;
  return Array.isArray(o.shape) && (typeof o.dataSync === 'function' || o.data !== undefined);
}

/** RGBA `ImageData` (e.g. from `ctx.getImageData`) to RGB: alpha is dropped, as PIL's convert('RGB') does. */
export function imageFromImageData(img: ImageDataLike, what = 'ImageData'): RgbImage {
  const { width, height, data } = img;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new Error(
      `${what}: image is ${width}x${height}; width and height must be positive integers`,
    );
  }
  const n = width * height;
  if (data.length !== n * 4) {
    throw new Error(
      `${what}: expected ${width}x${height}x4 = ${n * 4} RGBA bytes, got ${data.length}`,
    );
  }
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    out[3 * i] = data[4 * i];
    out[3 * i + 1] = data[4 * i + 1];
    out[3 * i + 2] = data[4 * i + 2];
  }
  return { data: out, width, height, source: what };
}

/** A `[H, W, 3]` (or `[H, W, 4]` / `[H, W, 1]`) tensor of integers 0..255 to RGB. */
export function imageFromTensor(t: TensorLike, what = 'tensor'): RgbImage {
  if (t.shape.length !== 3 || ![1, 3, 4].includes(t.shape[2])) {
    throw new Error(
      `${what}: expected an [H, W, 3] uint8 image tensor, got shape [${t.shape.join(', ')}]`,
    );
  }
  const [height, width, c] = t.shape;
  if (!Number.isInteger(height) || !Number.isInteger(width) || height < 1 || width < 1) {
    throw new Error(
      `${what}: image is ${width}x${height}; width and height must be positive integers`,
    );
  }
  const values = t.dataSync ? t.dataSync() : t.data!;
  if (values.length !== height * width * c) {
    throw new Error(
      `${what}: has ${values.length} values, shape [${t.shape.join(', ')}] needs ${height * width * c}`,
    );
  }
  const n = height * width;
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < 3; k++) {
      const v = values[i * c + (c === 1 ? 0 : k)];
      if (!(v >= 0 && v <= 255) || !Number.isInteger(v)) {
        throw new Error(
          `${what}: value ${v} at pixel ${i} is not an integer in 0..255 (pass uint8 pixels, not floats)`,
        );
      }
      out[3 * i + k] = v;
    }
  }
  return { data: out, width, height, source: what };
}

type Drawable = CanvasImageSource & { width?: number; height?: number };

function naturalSize(src: Drawable): [number, number] {
  const s = src as {
    naturalWidth?: number;
    naturalHeight?: number;
    displayWidth?: number;
    displayHeight?: number;
    videoWidth?: number;
    videoHeight?: number;
    width?: number | { baseVal?: { value: number } };
    height?: number | { baseVal?: { value: number } };
  };
  const w =
    s.naturalWidth || s.videoWidth || s.displayWidth || (typeof s.width === 'number' ? s.width : 0);
  const h =
    s.naturalHeight ||
    s.videoHeight ||
    s.displayHeight ||
    (typeof s.height === 'number' ? s.height : 0);
  return [w, h];
}

/** Draw a canvas image source at its natural size and read it back as RGB. Browser only. */
export function imageFromCanvasSource(src: CanvasImageSource, what = 'image element'): RgbImage {
  const [width, height] = naturalSize(src as Drawable);
  if (!(width >= 1 && height >= 1)) {
    throw new Error(`${what}: has size ${width}x${height} (not loaded yet, or empty)`);
  }
  let ctx: CanvasRenderingContext2D | OffscreenCanvasRenderingContext2D | null;
  if (typeof OffscreenCanvas !== 'undefined') {
    ctx = new OffscreenCanvas(width, height).getContext('2d', { willReadFrequently: true });
  } else if (typeof document !== 'undefined') {
    const canvas = document.createElement('canvas');
    canvas.width = width;
    canvas.height = height;
    ctx = canvas.getContext('2d', { willReadFrequently: true });
  } else {
    throw new Error(
      `${what}: no canvas in this environment (in Node pass a file path, Buffer, ImageData or tensor)`,
    );
  }
  if (!ctx) throw new Error(`${what}: could not get a 2D canvas context`);
  ctx.drawImage(src, 0, 0, width, height);
  return imageFromImageData(ctx.getImageData(0, 0, width, height), what);
}
