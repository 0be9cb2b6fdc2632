/**
 * Node image decoding with `sharp` (libvips): JPEG, PNG, WebP, AVIF, GIF (first frame), TIFF, ...
 * Mirrors HF's `load_image` + PIL `convert('RGB')`: the EXIF orientation is applied, grayscale is replicated to
 * R=G=B, an alpha channel is dropped (not composited), embedded ICC profiles are ignored as PIL ignores them.
 * Differences from PIL that remain: CMYK JPEGs go through libvips' CMYK->sRGB transform (PIL uses a naive
 * formula), 16-bit images are scaled to 8 bits (PIL clips 16-bit grayscale at 255), and JPEG decoding may differ
 * from Pillow's libjpeg-turbo by a level here and there.
 */
import type { RgbImage } from './image.js';

/** Turn interleaved 1-4 channel uint8 data into RGB: gray -> R=G=B, alpha dropped. */
function toRgb(
  data: Uint8Array,
  width: number,
  height: number,
  channels: number,
  what: string,
): RgbImage {
  const n = width * height;
  if (data.length !== n * channels) {
    throw new Error(`${what}: ${data.length} bytes do not make ${width}x${height}x${channels}`);
  }
  if (channels === 3) return { data, width, height, source: what };
  const out = new Uint8Array(n * 3);
  if (channels === 1 || channels === 2) {
    for (let i = 0; i < n; i++) {
      const g = data[i * channels];
      out[3 * i] = g;
      out[3 * i + 1] = g;
      out[3 * i + 2] = g;
    }
  } else if (channels === 4) {
    for (let i = 0; i < n; i++) {
      out[3 * i] = data[4 * i];
      out[3 * i + 1] = data[4 * i + 1];
      out[3 * i + 2] = data[4 * i + 2];
    }
  } else {
    throw new Error(`${what}: ${channels} channels per pixel are not supported (1 to 4)`);
  }
  return { data: out, width, height, source: what };
}

/**
 * Decode an image file (path) or encoded bytes (Buffer / Uint8Array) into 8-bit RGB.
 * `name` labels the image in error messages (defaults to the path, or "image buffer").
 */
export async function loadImageNode(input: string | Uint8Array, name?: string): Promise<RgbImage> {
  let bytes: Uint8Array;
  let what: string;
  if (typeof input === 'string') {
    what = name ?? input;
    try {
      const { readFile } = await import('node:fs/promises');
      bytes = await readFile(input);
    } catch (e) {
      throw new Error(`${what}: cannot read image file (${(e as Error).message})`, { cause: e });
    }
  } else if (input instanceof Uint8Array) {
    what = name ?? 'image buffer';
    bytes = input;
  } else {
    throw new Error(
      `${name ?? 'image'}: expected a file path or encoded image bytes, got ${typeof input}`,
    );
  }
  if (bytes.length === 0) throw new Error(`${what}: file is empty (0 bytes), not an image`);
  const { default: sharp } = await import('sharp');
  try {
    const { data, info } = await sharp(bytes, {
      ignoreIcc: true,
      autoOrient: true,
      failOn: 'error',
      pages: 1,
    })
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.width < 1 || info.height < 1)
      throw new Error(`decoded to ${info.width}x${info.height}`);
    return toRgb(
      new Uint8Array(data.buffer, data.byteOffset, data.length),
      info.width,
      info.height,
      info.channels,
      what,
    );
  } catch (e) {
    const msg = (e as Error).message;
    throw new Error(`${what}: cannot decode image (${msg.split('\n')[0]})`, { cause: e });
  }
}
