import * as tf from '@tensorflow/tfjs';
import type { SiglipModel } from '../model/siglip_model.js';
import { type PairSource, disposeBatch, iterateBatches } from './data.js';
import { type TrainOutputs, prepareBatch, trainForward } from './forward.js';
import { sigmoidLoss } from './loss.js';

/** Retrieval recall: the fraction of queries whose own partner ranks within the top k. */
export interface RecallAtK {
  /** image -> text */
  imageToText: Record<number, number>;
  /** text -> image */
  textToImage: Record<number, number>;
}

/**
 * Recall@k from a `[n, n]` text x image similarity matrix whose diagonal holds the true pairs. A query's rank is
 * the number of candidates scoring strictly higher than its partner (ties favour the partner). A tensor is read
 * synchronously: on webgpu pass `await sim.array()` instead (as `evaluatePairs` does).
 */
export function recallAtK(similarity: tf.Tensor2D | number[][], ks: number[] = [1, 5]): RecallAtK {
  const s = Array.isArray(similarity) ? similarity : (similarity.arraySync() as number[][]);
  const n = s.length;
  if (n === 0 || s.some((r) => r.length !== n)) {
    throw new Error(
      'recallAtK: the similarity matrix must be square [texts, images] with pairs on its diagonal',
    );
  }
  const t2iRank: number[] = [];
  const i2tRank: number[] = [];
  for (let i = 0; i < n; i++) {
    let r = 0;
    for (let j = 0; j < n; j++) if (s[i][j] > s[i][i]) r++;
    t2iRank.push(r);
    let c = 0;
    for (let j = 0; j < n; j++) if (s[j][i] > s[i][i]) c++;
    i2tRank.push(c);
  }
  const frac = (ranks: number[], k: number) => ranks.filter((r) => r < k).length / n;
  return {
    imageToText: Object.fromEntries(ks.map((k) => [k, frac(i2tRank, k)])),
    textToImage: Object.fromEntries(ks.map((k) => [k, frac(t2iRank, k)])),
  };
}

export interface EvalResult {
  /** Mean sigmoid loss over the evaluation batches. */
  loss: number;
  recall: RecallAtK;
  pairs: number;
}

/**
 * Evaluates on held-out pairs: mean batch loss, and recall@1/5 of image->text and text->image retrieval over the
 * whole set (all images against all texts).
 */
export async function evaluatePairs(
  model: SiglipModel,
  data: PairSource,
  opts: { batchSize?: number; ks?: number[] } = {},
): Promise<EvalResult> {
  const images: tf.Tensor[] = [];
  const texts: tf.Tensor[] = [];
  let lossSum = 0;
  let batches = 0;
  try {
    for await (const b of iterateBatches(data, { batchSize: opts.batchSize ?? 32 })) {
      let out: TrainOutputs & { loss?: tf.Scalar };
      try {
        await prepareBatch(model, b);
        out = tf.tidy(() => {
          const o = trainForward(model, b, { training: false });
          const square = o.logitsPerText.shape[0] === o.logitsPerText.shape[1];
          return { ...o, loss: square ? sigmoidLoss(o.logitsPerText) : undefined };
        });
      } finally {
        disposeBatch(b);
      }
      images.push(out.imageEmbeds);
      texts.push(out.textEmbeds);
      if (out.loss) {
        lossSum += (await out.loss.data())[0];
        batches++;
      }
      tf.dispose([out.logitsPerText, ...(out.loss ? [out.loss] : [])]);
    }
    if (images.length === 0) throw new Error('evaluatePairs: no evaluation data');
    const sim = tf.tidy(() => tf.matMul(tf.concat(texts), tf.concat(images), false, true));
    const recall = recallAtK((await sim.array()) as number[][], opts.ks);
    const pairs = sim.shape[0];
    sim.dispose();
    return { loss: batches ? lossSum / batches : NaN, recall, pairs };
  } finally {
    tf.dispose([...images, ...texts]);
  }
}
