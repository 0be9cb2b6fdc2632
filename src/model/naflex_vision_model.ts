// The NaFlex vision tower (model_type siglip2, `Siglip2VisionTransformer`). Importing this module registers it with
// SiglipVisionModel, so `SiglipVisionModel.build` / `predict` (and SiglipModel, loadHfCheckpoint) handle it.
import * as tf from '@tensorflow/tfjs';
import { Siglip2VisionEmbeddings, readSpatialShapes } from '../layers/siglip2_vision_embeddings.js';
import { hostValues, rememberHostValues } from '../util/host_values.js';
import type { Siglip2VisionConfig, VisionConfig } from './config.js';
import {
  type BuildOptions,
  SiglipVisionModel,
  type VisionInputs,
  encoderAndHead,
  registerNaflex,
} from './vision_model.js';

function asNaflex(c: VisionConfig): Siglip2VisionConfig {
  if (c.modelType !== 'siglip2_vision_model') {
    throw new Error(`expected a siglip2_vision_model (NaFlex) configuration, got ${c.modelType}`);
  }
  return c;
}

/**
 * Builds the NaFlex vision tower as a TF.js LayersModel with inputs `pixel_values` `[B, maxPatches, C*p*p]`
 * float32, `pixel_attention_mask` `[B, maxPatches]` float32 (1 real patch, 0 padding) and `spatial_shapes`
 * `[B, 2]` int32, and outputs `[last_hidden_state, pooler_output]`. `maxPatches` is free: one model serves every
 * `max_num_patches`. Layers: `embeddings` (Siglip2VisionEmbeddings), `encoder`, `post_layernorm`, `head`; the
 * patch mask masks keys in every encoder layer and in the head.
 */
function buildNaflexVisionModel(config: VisionConfig, opts: BuildOptions = {}): tf.LayersModel {
  const c = asNaflex(config);
  const patchDim = c.numChannels * c.patchSize * c.patchSize;
  const pixels = tf.input({ shape: [null, patchDim], name: 'pixel_values' });
  const mask = tf.input({ shape: [null], name: 'pixel_attention_mask' });
  const shapes = tf.input({ shape: [2], dtype: 'int32', name: 'spatial_shapes' });
  const embeddings = new Siglip2VisionEmbeddings({
    name: 'embeddings',
    hiddenSize: c.hiddenSize,
    patchSize: c.patchSize,
    numPatches: c.numPatches,
    numChannels: c.numChannels,
    weightInit: opts.weightInit,
  });
  const embedded = embeddings.apply([pixels, shapes]) as tf.SymbolicTensor;
  return encoderAndHead(c, [pixels, mask, shapes], embedded, mask, opts);
}

function isNumeric(t: tf.Tensor): boolean {
  return t.dtype === 'float32' || t.dtype === 'int32' || t.dtype === 'bool';
}

/**
 * Checks NaFlex inputs and returns them in the LayersModel's order `[pixel_values, pixel_attention_mask,
 * spatial_shapes]` (mask as float32, shapes as int32; tensors converted here are new and owned by the caller).
 * The mask must mark exactly the first `h*w` patches of each image, as the image processor lays them out.
 */
export function naflexFeeds(config: VisionConfig, inputs: VisionInputs): tf.Tensor[] {
  const c = asNaflex(config);
  const { pixelValues, pixelAttentionMask, spatialShapes } = inputs;
  const patchDim = c.numChannels * c.patchSize * c.patchSize;
  if (!(pixelValues instanceof tf.Tensor)) throw new Error('pixelValues must be a tf.Tensor');
  if (pixelValues.dtype !== 'float32') {
    throw new Error(`pixelValues must be float32, got ${pixelValues.dtype}`);
  }
  if (
    pixelValues.rank !== 3 ||
    pixelValues.shape[2] !== patchDim ||
    (pixelValues.shape[1] as number) < 1
  ) {
    throw new Error(
      `pixelValues must have shape [batch, maxPatches, ${patchDim}] (patchified: C*p*p = ${c.numChannels}*${c.patchSize}*${c.patchSize}), ` +
        `got [${pixelValues.shape.join(', ')}]`,
    );
  }
  const [batch, maxPatches] = pixelValues.shape;
  if (!(pixelAttentionMask instanceof tf.Tensor)) {
    throw new Error(
      'pixelAttentionMask is required for a NaFlex model ([batch, maxPatches], 1 = patch, 0 = padding)',
    );
  }
  if (!(spatialShapes instanceof tf.Tensor)) {
    throw new Error(
      'spatialShapes is required for a NaFlex model ([batch, 2] int32 (h, w) patches per image)',
    );
  }
  if (!isNumeric(pixelAttentionMask) || !isNumeric(spatialShapes)) {
    throw new Error(
      `pixelAttentionMask and spatialShapes must be numeric tensors, got ${pixelAttentionMask.dtype} and ${spatialShapes.dtype}`,
    );
  }
  if (
    pixelAttentionMask.rank !== 2 ||
    pixelAttentionMask.shape[0] !== batch ||
    pixelAttentionMask.shape[1] !== maxPatches
  ) {
    throw new Error(
      `pixelAttentionMask must have shape [${batch}, ${maxPatches}] to match pixelValues, got [${pixelAttentionMask.shape.join(', ')}]`,
    );
  }
  const shapes = readSpatialShapes(spatialShapes, batch, maxPatches, 'spatialShapes');
  const mask = hostValues(pixelAttentionMask, 'pixelAttentionMask');
  shapes.forEach(([h, w], i) => {
    const n = h * w;
    for (let j = 0; j < maxPatches; j++) {
      const v = mask[i * maxPatches + j];
      const want = j < n ? 1 : 0;
      if (v !== want) {
        throw new Error(
          `pixelAttentionMask[${i}] must be 1 for the first h*w = ${h}*${w} = ${n} patches (spatialShapes[${i}]) and 0 for the ` +
            `other ${maxPatches - n}; position ${j} is ${v}`,
        );
      }
    }
  });
  const maskF =
    pixelAttentionMask.dtype === 'float32' ? pixelAttentionMask : pixelAttentionMask.toFloat();
  let shapesI = spatialShapes;
  if (spatialShapes.dtype !== 'int32') {
    // A new tensor made from the host copy (not a cast on the device), so the embedding layer finds its values.
    const ints = Int32Array.from(hostValues(spatialShapes, 'spatialShapes'));
    shapesI = tf.tensor(ints, spatialShapes.shape, 'int32');
    rememberHostValues(shapesI, ints);
  }
  return [pixelValues, maskF, shapesI];
}

registerNaflex((c, opts) => new SiglipVisionModel(c, buildNaflexVisionModel(c, opts)), naflexFeeds);
