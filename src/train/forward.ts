import * as tf from '@tensorflow/tfjs';
import type { SiglipModel } from '../model/siglip_model.js';
import type { VisionInputs } from '../model/vision_model.js';
import { sigmoidLoss } from './loss.js';
import { readHostValues } from '../util/host_values.js';
import './wasm_kernels.js';

/** One batch of image-text pairs: image i goes with text i. */
export interface PairBatch extends VisionInputs {
  /** `[B, L]` int32 token ids. */
  inputIds: tf.Tensor;
}

/** What a differentiable forward pass returns (every tensor belongs to the caller). */
export interface TrainOutputs {
  /** `[B_text, B_image]` */
  logitsPerText: tf.Tensor2D;
  /** L2-normalised `[B_image, D]` and `[B_text, D]`. */
  imageEmbeds: tf.Tensor2D;
  textEmbeds: tf.Tensor2D;
}

/**
 * Reads on the host, asynchronously, what the forward pass needs on the CPU: the token ids (checked against the
 * vocabulary) and, for NaFlex, the patch mask and the patch grids. The layers then take these copies (see
 * `hostValues`) instead of reading the device synchronously, which TF.js's webgpu backend cannot do in Node and
 * which stalls a GPU anywhere. Call it before `trainForward` / `pairLoss` / a custom loss on a batch (the
 * trainer, `lossAndGrads` and `evaluatePairs` do). Checks the ids, so a bad batch fails here with the position of
 * the bad id.
 */
export async function prepareBatch(model: SiglipModel, batch: PairBatch): Promise<void> {
  const { text } = model;
  const reads: Promise<unknown>[] = [];
  if (batch.inputIds instanceof tf.Tensor) reads.push(readHostValues(batch.inputIds));
  for (const t of [batch.pixelAttentionMask, batch.spatialShapes]) {
    if (t instanceof tf.Tensor) reads.push(readHostValues(t));
  }
  await Promise.all(reads);
  text?.checkIds(batch.inputIds);
}

function asList(t: tf.Tensor | tf.Tensor[] | tf.SymbolicTensor | tf.SymbolicTensor[]): tf.Tensor[] {
  return (Array.isArray(t) ? t : [t]) as tf.Tensor[];
}

/**
 * The dual model's forward pass as plain TF.js ops that gradients can flow through: each tower's LayersModel
 * is run with `apply(inputs, {training})` (not `predict`, which detaches nothing but also checks batch sizes and
 * runs outside the gradient tape's reach when wrapped), then the scores model. Call it inside `tf.variableGrads`
 * / `tf.grads` or a `tf.tidy`, after `await prepareBatch(model, batch)` (which reads the token ids and NaFlex grids
 * on the host without a synchronous device read).
 */
export function trainForward(
  model: SiglipModel,
  batch: PairBatch,
  opts: { training?: boolean } = {},
): TrainOutputs {
  const { vision, text, scores } = model;
  if (!vision || !text || !scores) {
    throw new Error('trainForward: the model needs both towers and the scoring head');
  }
  text.checkIds(batch.inputIds);
  const kwargs = { training: opts.training ?? true };
  const visionOut = asList(vision.model.apply(vision.feeds(batch), kwargs));
  const textOut = asList(text.model.apply(batch.inputIds, kwargs));
  const [imageEmbeds, textEmbeds, , logitsPerText] = asList(
    scores.apply([visionOut[1], textOut[1]], kwargs),
  ) as tf.Tensor2D[];
  return { logitsPerText, imageEmbeds, textEmbeds };
}

/** The sigmoid loss of a batch of pairs (a scalar the caller owns). */
export function pairLoss(model: SiglipModel, batch: PairBatch, training = true): tf.Scalar {
  return tf.tidy(() => sigmoidLoss(trainForward(model, batch, { training }).logitsPerText));
}
