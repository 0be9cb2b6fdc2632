// Turns records into model inputs: decode (sharp), augment, the model's own preprocessing, tokenize.
import * as tf from '@tensorflow/tfjs';
import type { TextTokenizer } from '../pipeline/pipeline.js';
import { loadImageNode } from '../processors/decode_node.js';
import {
  type RgbImage,
  Siglip2ImageProcessor,
  type SiglipImageProcessor,
} from '../processors/image.js';
import type { PairBatch } from '../train/forward.js';
import { type AugmentOptions, augmentImage, augmentationEnabled, sampleRandom } from './augment.js';
import type { PairRecord } from './data_source.js';

/** What turns records into tensors. */
export interface Preprocessing {
  imageProcessor: SiglipImageProcessor | Siglip2ImageProcessor;
  tokenizer: TextTokenizer;
  /** Token ids per caption (the text tower's positions). */
  textLength: number;
  lowercase?: boolean;
}

/** Augmentation of one batch: options, and the seed and epoch its per-sample random sources derive from. */
export interface BatchAugment extends AugmentOptions {
  seed: number;
  epoch: number;
}

/** Tokenizes captions to `[n, L]` int32 ids. */
export function tokenizeCaptions(p: Preprocessing, captions: string[]): tf.Tensor2D {
  const enc = p.tokenizer.encode(captions, { lowercase: p.lowercase, maxLength: p.textLength });
  return tf.tensor2d(enc.inputIds, enc.shape, 'int32');
}

/** Pixel inputs of decoded images (fixed resolution or NaFlex). */
export function pixelInputs(p: Preprocessing, images: RgbImage[]): Omit<PairBatch, 'inputIds'> {
  const proc = p.imageProcessor;
  if (proc instanceof Siglip2ImageProcessor) {
    const b = proc.preprocess(images);
    return {
      pixelValues: tf.tensor3d(b.pixelValues, b.shape),
      pixelAttentionMask: tf.tensor2d(b.pixelAttentionMask, [b.shape[0], b.shape[1]], 'int32'),
      spatialShapes: tf.tensor2d(b.spatialShapes, [b.shape[0], 2], 'int32'),
    };
  }
  const b = proc.preprocess(images);
  return { pixelValues: tf.tensor4d(b.pixelValues, b.shape) };
}

/** Decodes one record's image, naming the record's file and line when it fails. */
export async function decodeRecord(r: PairRecord): Promise<RgbImage> {
  try {
    return await loadImageNode(r.image, r.image);
  } catch (e) {
    throw new Error(`${r.where}: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * The batch of `records[indices]`. With augmentation, sample `indices[i]` gets the random source of
 * (seed, epoch, indices[i]), so a batch is the same whatever ran before it (resumed runs repeat it exactly).
 */
export async function loadBatch(
  records: readonly PairRecord[],
  indices: readonly number[],
  p: Preprocessing,
  augment?: BatchAugment,
): Promise<PairBatch> {
  const images: RgbImage[] = [];
  for (const i of indices) {
    let img = await decodeRecord(records[i]);
    if (augment && augmentationEnabled(augment)) {
      img = augmentImage(img, augment, sampleRandom(augment.seed, augment.epoch, i));
    }
    images.push(img);
  }
  const pixels = pixelInputs(p, images);
  const inputIds = tokenizeCaptions(
    p,
    indices.map((i) => records[i].caption),
  );
  return { ...pixels, inputIds };
}

export function disposePairBatch(b: PairBatch): void {
  tf.dispose(
    [b.pixelValues, b.inputIds, b.pixelAttentionMask, b.spatialShapes].filter(
      (t): t is tf.Tensor => t !== undefined,
    ),
  );
}
