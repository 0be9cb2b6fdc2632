import * as tf from '@tensorflow/tfjs';
import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { readSafetensors } from '../../src/io/safetensors.js';
import type { PairBatch } from '../../src/train/forward.js';
import { fixture } from './fixtures.js';

/** The image-text pairs of the `siglip_tiny_loss_grad` fixture as tensors the caller owns. */
export async function lossGradFixtureBatch(): Promise<PairBatch> {
  const inputs = await readSafetensors(
    join(fixture('siglip_tiny_loss_grad'), 'inputs.safetensors'),
  );
  const px = inputs.get('pixel_values');
  const ids = inputs.get('input_ids');
  assert.ok(px && ids);
  return {
    pixelValues: tf.tensor(px.data as Float32Array, px.shape),
    inputIds: tf.tensor(ids.data as Int32Array, ids.shape, 'int32'),
  };
}
