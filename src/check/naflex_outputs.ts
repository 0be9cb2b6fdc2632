// NaFlex fixtures also store the two parts of the embeddings: `vision.patch_embeds` and
// `vision.resized_position_embeddings`. Importing this module teaches `siglip2 check` to compute them.
import type * as tf from '@tensorflow/tfjs';
import { Siglip2VisionEmbeddings } from '../layers/siglip2_vision_embeddings.js';
import '../model/naflex_vision_model.js';
import { registerExtraOutputs } from './model_fixture.js';

registerExtraOutputs((name, model, inputs): tf.Tensor | undefined => {
  if (name !== 'vision.patch_embeds' && name !== 'vision.resized_position_embeddings')
    return undefined;
  const layer = model.vision?.model.getLayer('embeddings');
  const pixels = inputs.get('pixel_values');
  const shapes = inputs.get('spatial_shapes');
  if (!(layer instanceof Siglip2VisionEmbeddings) || !pixels || !shapes) return undefined;
  return name === 'vision.patch_embeds'
    ? layer.patchEmbeds(pixels)
    : layer.resizedPositionEmbeddings(shapes, pixels.shape[1] as number);
});
