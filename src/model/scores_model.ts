import * as tf from '@tensorflow/tfjs';
import { L2Normalize } from '../layers/l2_normalize.js';
import { SiglipLogits } from '../layers/logits.js';

/**
 * The dual model's scoring head as a LayersModel: `[image pooler_output, text pooler_output] ->
 * [image_embeds, text_embeds, logits_per_image, logits_per_text]` (L2 normalisation, then
 * `text @ image^T * exp(logit_scale) + logit_bias`).
 */
export function buildScoresModel(imageDim: number, textDim: number): tf.LayersModel {
  if (imageDim !== textDim) {
    throw new Error(
      `the vision embedding size ${imageDim} differs from the text projection size ${textDim}: they cannot be compared`,
    );
  }
  const image = tf.input({ shape: [imageDim], name: 'image_pooler_output' });
  const text = tf.input({ shape: [textDim], name: 'text_pooler_output' });
  const imageEmbeds = new L2Normalize({ name: 'image_embeds' }).apply(image) as tf.SymbolicTensor;
  const textEmbeds = new L2Normalize({ name: 'text_embeds' }).apply(text) as tf.SymbolicTensor;
  const [perImage, perText] = new SiglipLogits({ name: 'logits' }).apply([
    imageEmbeds,
    textEmbeds,
  ]) as tf.SymbolicTensor[];
  return tf.model({
    inputs: [image, text],
    outputs: [imageEmbeds, textEmbeds, perImage, perText],
    name: 'scores',
  });
}
