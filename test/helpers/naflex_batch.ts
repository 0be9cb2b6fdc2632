import * as tf from '@tensorflow/tfjs';
import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { readSafetensors } from '../../src/io/safetensors.js';
import type { PairBatch } from '../../src/train/forward.js';
import { fixture } from './fixtures.js';

/**
 * Image-text pairs of the `siglip2_naflex_tiny` fixture as tensors the caller owns: its three texts paired with
 * its first three images (patchified pixels, patch masks with padding, (h, w) grids).
 */
export async function naflexBatch(): Promise<PairBatch> {
  const inputs = await readSafetensors(join(fixture('siglip2_naflex_tiny'), 'inputs.safetensors'));
  const get = (n: string) => {
    const t = inputs.get(n);
    assert.ok(t, n);
    return t;
  };
  const px = get('pixel_values');
  const mask = get('pixel_attention_mask');
  const shapes = get('spatial_shapes');
  const ids = get('input_ids');
  const n = ids.shape[0];
  const int = (d: ArrayLike<number | bigint>) => Int32Array.from(d, Number);
  return tf.tidy(() => ({
    pixelValues: tf.tensor(px.data as Float32Array, px.shape).slice(0, n),
    pixelAttentionMask: tf.tensor(int(mask.data), mask.shape, 'int32').slice(0, n),
    spatialShapes: tf.tensor(int(shapes.data), shapes.shape, 'int32').slice(0, n),
    inputIds: tf.tensor(int(ids.data), ids.shape, 'int32'),
  }));
}
