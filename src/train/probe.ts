import * as tf from '@tensorflow/tfjs';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import type { SiglipModel } from '../model/siglip_model.js';

/** L2-normalised image embeddings `[N, D]` of `[N, C, H, W]` pixel values, computed in batches (no gradients). */
export async function embedImages(
  model: SiglipModel,
  pixelValues: tf.Tensor,
  batchSize = 32,
): Promise<tf.Tensor2D> {
  if (!model.vision) throw new Error('embedImages: the model has no vision tower');
  const n = pixelValues.shape[0];
  const parts: tf.Tensor[] = [];
  for (let s = 0; s < n; s += batchSize) {
    const e = tf.tidy(() => {
      const x = pixelValues.slice(s, Math.min(batchSize, n - s));
      const pooled = model.vision?.predict({ pixelValues: x }).poolerOutput;
      if (!pooled) throw new Error('embedImages: the vision tower has no pooling head');
      return pooled.div(tf.norm(pooled, 'euclidean', -1, true));
    });
    parts.push(e);
    await tf.nextFrame();
  }
  const out = tf.concat(parts) as tf.Tensor2D;
  tf.dispose(parts);
  return out;
}

/** A labelled image folder: one subfolder per class (`dir/<class>/<image>`). */
export interface LabelledFolder {
  classes: string[];
  files: string[];
  labels: number[];
}

const IMAGE_EXT = /\.(png|jpe?g|webp|gif|bmp|tiff?)$/i;

/** Lists `dir/<class>/<image>` files (classes sorted by name, images by name). */
export async function readLabelledFolder(dir: string, filter = IMAGE_EXT): Promise<LabelledFolder> {
  const entries = await fsp.readdir(dir, { withFileTypes: true }).catch((e: Error) => {
    throw new Error(`${dir}: cannot list the labelled folder (${e.message})`, { cause: e });
  });
  const classes = entries
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
  if (classes.length < 2)
    throw new Error(`${dir}: needs at least two class subfolders, found ${classes.length}`);
  const files: string[] = [];
  const labels: number[] = [];
  for (let c = 0; c < classes.length; c++) {
    const names = (await fsp.readdir(join(dir, classes[c]))).filter((f) => filter.test(f)).sort();
    for (const f of names) {
      files.push(join(dir, classes[c], f));
      labels.push(c);
    }
  }
  if (files.length === 0) throw new Error(`${dir}: no images in the class subfolders`);
  return { classes, files, labels };
}

export interface ProbeOptions {
  epochs?: number;
  learningRate?: number;
  batchSize?: number;
  /** L2 penalty on the head's kernel. Default 1e-4. */
  l2?: number;
}

/** A linear classification head (softmax regression) on frozen image embeddings. */
export class LinearProbe {
  private constructor(
    readonly model: tf.LayersModel,
    readonly numClasses: number,
  ) {}

  /** Trains the head with Adam and cross-entropy; `labels` are class indices. */
  static async fit(
    embeds: tf.Tensor2D,
    labels: number[],
    numClasses: number,
    opts: ProbeOptions = {},
  ): Promise<LinearProbe> {
    if (labels.length !== embeds.shape[0]) {
      throw new Error(`LinearProbe.fit: ${embeds.shape[0]} embeddings but ${labels.length} labels`);
    }
    const bad = labels.findIndex((l) => !(Number.isInteger(l) && l >= 0 && l < numClasses));
    if (bad >= 0)
      throw new Error(
        `LinearProbe.fit: labels[${bad}] = ${labels[bad]} is not in [0, ${numClasses})`,
      );
    const model = tf.sequential({
      layers: [
        tf.layers.dense({
          inputShape: [embeds.shape[1]],
          units: numClasses,
          activation: 'softmax',
          kernelRegularizer: tf.regularizers.l2({ l2: opts.l2 ?? 1e-4 }),
        }),
      ],
    });
    model.compile({
      optimizer: tf.train.adam(opts.learningRate ?? 1e-2),
      loss: 'categoricalCrossentropy',
    });
    const y = tf.oneHot(tf.tensor1d(labels, 'int32'), numClasses);
    try {
      await model.fit(embeds, y, {
        epochs: opts.epochs ?? 100,
        batchSize: opts.batchSize ?? 64,
        shuffle: true,
        verbose: 0,
      });
    } finally {
      y.dispose();
    }
    return new LinearProbe(model, numClasses);
  }

  /** Class probabilities `[N, classes]`. */
  predict(embeds: tf.Tensor2D): tf.Tensor2D {
    return this.model.predict(embeds) as tf.Tensor2D;
  }

  /** Fraction of `labels` predicted correctly (read asynchronously: works on webgpu in Node too). */
  async accuracy(embeds: tf.Tensor2D, labels: number[]): Promise<number> {
    if (labels.length !== embeds.shape[0]) {
      throw new Error(
        `LinearProbe.accuracy: ${embeds.shape[0]} embeddings but ${labels.length} labels`,
      );
    }
    const best = tf.tidy(() => this.predict(embeds).argMax(-1));
    const pred = await best.data();
    best.dispose();
    return labels.filter((l, i) => pred[i] === l).length / labels.length;
  }

  dispose(): void {
    this.model.dispose();
  }
}
