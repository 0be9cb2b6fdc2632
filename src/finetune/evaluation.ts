// Evaluation of a fine-tuning run: validation loss, retrieval recall@1/5/10 in both directions, and zero-shot
// top-1 / top-5 accuracy for class folders.
import * as tf from '@tensorflow/tfjs';
import type { SiglipModel } from '../model/siglip_model.js';
// NaFlex (siglip2) vision towers register themselves on import.
import '../model/naflex_vision_model.js';
import { type PairBatch, trainForward } from '../train/forward.js';
import { sigmoidLoss } from '../train/loss.js';
import { disposePairBatch, loadBatch, type Preprocessing, tokenizeCaptions } from './batches.js';
import type { PairData } from './data_source.js';

export const RECALL_KS = [1, 5, 10] as const;

/** The numbers of one evaluation (snake_case: they go to metrics.jsonl as they are). */
export interface EvalMetrics {
  val_loss: number;
  image_to_text_r1: number;
  image_to_text_r5: number;
  image_to_text_r10: number;
  text_to_image_r1: number;
  text_to_image_r5: number;
  text_to_image_r10: number;
  /** Class folders only. */
  zeroshot_top1?: number;
  zeroshot_top5?: number;
  pairs: number;
}

/**
 * `[B, B]` matching-pair targets of a batch: 1 where two rows have identical token ids (the same caption), so a
 * caption shared by several images (class folders, repeated captions) is a positive for each of them, not a
 * negative. With distinct captions this is the identity, i.e. SigLIP's own loss.
 */
export function sameCaptionTargets(inputIds: tf.Tensor): tf.Tensor2D {
  return tf.tidy(() => {
    const a = inputIds.expandDims(1);
    const b = inputIds.expandDims(0);
    return tf.equal(a, b).toInt().min(-1).toFloat() as tf.Tensor2D;
  });
}

/** The sigmoid loss of a batch with `sameCaptionTargets` (the loss of `siglip2 finetune`). */
export function finetuneLoss(model: SiglipModel, batch: PairBatch, training: boolean): tf.Scalar {
  return tf.tidy(() => {
    const out = trainForward(model, batch, { training });
    return sigmoidLoss(out.logitsPerText, sameCaptionTargets(batch.inputIds));
  });
}

/**
 * Recall@k over unique captions. Image -> text: the image's caption ranks within the top k of all distinct
 * captions. Text -> image: for each distinct caption, one of its images ranks within the top k of all images.
 * A rank counts the candidates scoring strictly higher (ties favour the true match). `sim` is `[captions, images]`.
 */
export function retrievalRecall(
  sim: Float32Array,
  numCaptions: number,
  captionOfImage: readonly number[],
  ks: readonly number[] = RECALL_KS,
): { imageToText: number[]; textToImage: number[] } {
  const nImg = captionOfImage.length;
  const s = (c: number, i: number) => sim[c * nImg + i];
  const i2t: number[] = [];
  for (let i = 0; i < nImg; i++) {
    const own = s(captionOfImage[i], i);
    let r = 0;
    for (let c = 0; c < numCaptions; c++) if (s(c, i) > own) r++;
    i2t.push(r);
  }
  const t2i: number[] = [];
  for (let c = 0; c < numCaptions; c++) {
    let best = -Infinity;
    for (let i = 0; i < nImg; i++) if (captionOfImage[i] === c) best = Math.max(best, s(c, i));
    if (best === -Infinity) continue;
    let r = 0;
    for (let i = 0; i < nImg; i++) if (captionOfImage[i] !== c && s(c, i) > best) r++;
    t2i.push(r);
  }
  const frac = (ranks: number[], k: number) => ranks.filter((r) => r < k).length / ranks.length;
  return { imageToText: ks.map((k) => frac(i2t, k)), textToImage: ks.map((k) => frac(t2i, k)) };
}

/** Top-1 / top-5 accuracy of class predictions from `[classes, images]` scores. */
export function topKAccuracy(
  scores: Float32Array,
  numClasses: number,
  labels: readonly number[],
): { top1: number; top5: number } {
  const n = labels.length;
  let top1 = 0;
  let top5 = 0;
  for (let i = 0; i < n; i++) {
    const own = scores[labels[i] * n + i];
    let r = 0;
    for (let c = 0; c < numClasses; c++) if (scores[c * n + i] > own) r++;
    if (r < 1) top1++;
    if (r < 5) top5++;
  }
  return { top1: top1 / n, top5: top5 / n };
}

export interface EvaluateOptions {
  batchSize: number;
  /** Class folders: zero-shot prompts are this template with `{}` replaced by each class name. */
  zeroShotTemplate?: string;
  /** Called after each batch (for progress). */
  onBatch?: (done: number, total: number) => void;
}

/** Evaluates `model` on `data` (no augmentation; batches in file order). */
export async function evaluateData(
  model: SiglipModel,
  data: PairData,
  p: Preprocessing,
  opts: EvaluateOptions,
): Promise<EvalMetrics> {
  const records = data.records;
  const n = records.length;
  const images: tf.Tensor[] = [];
  let lossSum = 0;
  let lossPairs = 0;
  const bs = opts.batchSize;
  const total = Math.ceil(n / bs);
  try {
    for (let s = 0; s < n; s += bs) {
      const idx = Array.from({ length: Math.min(bs, n - s) }, (_, k) => s + k);
      const batch = await loadBatch(records, idx, p);
      try {
        const { loss, imageEmbeds } = tf.tidy(() => {
          const out = trainForward(model, batch, { training: false });
          return {
            imageEmbeds: out.imageEmbeds,
            loss: sigmoidLoss(out.logitsPerText, sameCaptionTargets(batch.inputIds)),
          };
        });
        images.push(imageEmbeds);
        lossSum += (await loss.data())[0] * idx.length;
        lossPairs += idx.length;
        loss.dispose();
      } finally {
        disposePairBatch(batch);
      }
      opts.onBatch?.(images.length, total);
    }
    // Distinct captions, embedded once each.
    const captions = [...new Set(records.map((r) => r.caption))];
    const captionIndex = new Map(captions.map((c, i) => [c, i]));
    const captionOfImage = records.map((r) => captionIndex.get(r.caption) as number);
    const imageEmbeds = tf.concat(images);
    images.push(imageEmbeds);
    const textEmbeds = await embedTexts(model, p, captions, bs);
    const sim = tf.tidy(() => tf.matMul(textEmbeds, imageEmbeds, false, true));
    const simData = (await sim.data()) as Float32Array;
    tf.dispose([sim, textEmbeds]);
    const recall = retrievalRecall(simData, captions.length, captionOfImage);
    const m: EvalMetrics = {
      val_loss: lossSum / lossPairs,
      image_to_text_r1: recall.imageToText[0],
      image_to_text_r5: recall.imageToText[1],
      image_to_text_r10: recall.imageToText[2],
      text_to_image_r1: recall.textToImage[0],
      text_to_image_r5: recall.textToImage[1],
      text_to_image_r10: recall.textToImage[2],
      pairs: n,
    };
    if (data.classes && opts.zeroShotTemplate) {
      const prompts = data.classes.map((c) =>
        (opts.zeroShotTemplate as string).replaceAll('{}', c.replaceAll('_', ' ')),
      );
      const classEmbeds = await embedTexts(model, p, prompts, bs);
      const scores = tf.tidy(() => tf.matMul(classEmbeds, imageEmbeds, false, true));
      const acc = topKAccuracy(
        (await scores.data()) as Float32Array,
        prompts.length,
        records.map((r) => r.label as number),
      );
      tf.dispose([scores, classEmbeds]);
      m.zeroshot_top1 = acc.top1;
      m.zeroshot_top5 = acc.top5;
    }
    return m;
  } finally {
    tf.dispose(images);
  }
}

/** L2-normalised text embeddings `[n, D]` of captions. */
async function embedTexts(
  model: SiglipModel,
  p: Preprocessing,
  texts: string[],
  batchSize: number,
): Promise<tf.Tensor2D> {
  const text = model.text;
  if (!text) throw new Error('evaluate: the model has no text tower');
  const parts: tf.Tensor[] = [];
  for (let s = 0; s < texts.length; s += batchSize) {
    const ids = tokenizeCaptions(p, texts.slice(s, s + batchSize));
    try {
      text.checkIds(ids);
      parts.push(
        tf.tidy(() => {
          const out = text.model.apply(ids, { training: false }) as tf.Tensor[];
          const pooled = out[1];
          return pooled.div(tf.norm(pooled, 'euclidean', -1, true));
        }),
      );
    } finally {
      ids.dispose();
    }
    await tf.nextFrame();
  }
  const out = tf.concat(parts) as tf.Tensor2D;
  tf.dispose(parts);
  return out;
}
