/**
 * Images and texts in, embeddings and scores out: a LoadedSiglipModel with its tokenizer and image processor.
 * Browser-safe (files are fetched over HTTP; in Node, paths are read with node:fs, imported lazily).
 */
import * as tf from '@tensorflow/tfjs';
import type { LoadedSiglipModel, ProcessorInfo } from '../loader/load.js';
import { disposeOutputs } from '../model/siglip_model.js';
import {
  createImageProcessor,
  type PreprocessorConfigJson,
  Siglip2ImageProcessor,
  type SiglipImageProcessor,
} from '../processors/image.js';
import { type ImageInput, loadImage } from '../processors/load.js';
import {
  SiglipTokenizer,
  type SiglipTokenizerOptions,
  type TokenizerConfigJson,
} from '../processors/tokenizer.js';

/** Reads a processor file (URL or, in Node, a path) as JSON. */
async function readJsonFile(location: string): Promise<unknown> {
  let text: string;
  if (/^(https?|blob|data):/i.test(location)) {
    const res = await fetch(location);
    if (!res.ok) throw new Error(`${location}: HTTP ${res.status}`);
    text = await res.text();
  } else {
    const { readFile } = await import('node:fs/promises');
    const { fileURLToPath } = await import('node:url');
    text = await readFile(
      location.startsWith('file:') ? fileURLToPath(location) : location,
      'utf8',
    );
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new Error(`${location}: not valid JSON (${(e as Error).message})`, { cause: e });
  }
}

/** The tokenizer of a converted model (its copied tokenizer.json and tokenizer_config.json). */
export async function tokenizerFromProcessorInfo(
  info: ProcessorInfo,
  opts: SiglipTokenizerOptions = {},
): Promise<SiglipTokenizer> {
  const file = info.files['tokenizer.json'];
  if (file === undefined) {
    throw new Error(
      'this converted model has no tokenizer.json (convert a checkpoint that has one, or put one beside siglip.json ' +
        'and list it in its "files")',
    );
  }
  const json = await readJsonFile(file);
  return SiglipTokenizer.fromJSON(json, (info.tokenizerConfig ?? {}) as TokenizerConfigJson, opts);
}

export interface Score {
  label: string;
  /** sigmoid(logit): SigLIP's probability that the label matches the image. */
  score: number;
  logit: number;
}

/** Timings (milliseconds) of the last call. */
export interface PipelineTimings {
  preprocessMs: number;
  inferenceMs: number;
}

export class SiglipPipeline {
  /** Timings of the last embedImages / embedTexts / classify call. */
  lastTimings: PipelineTimings = { preprocessMs: 0, inferenceMs: 0 };

  constructor(
    readonly model: LoadedSiglipModel,
    readonly tokenizer: SiglipTokenizer | undefined,
    readonly imageProcessor: SiglipImageProcessor | Siglip2ImageProcessor | undefined,
  ) {}

  /** Builds the tokenizer and image processor from the files the converter copied beside the model. */
  static async create(
    model: LoadedSiglipModel,
    opts: { tokenizer?: SiglipTokenizerOptions; maxNumPatches?: number } = {},
  ): Promise<SiglipPipeline> {
    const maxLength = model.config.textConfig?.maxPositionEmbeddings;
    const tokenizer = model.text
      ? await tokenizerFromProcessorInfo(model.processor, {
          ...(maxLength ? { maxLength } : {}),
          ...opts.tokenizer,
        })
      : undefined;
    const pre = (model.processor.preprocessorConfig ?? {}) as PreprocessorConfigJson;
    const imageProcessor = model.vision
      ? createImageProcessor(pre, { maxNumPatches: opts.maxNumPatches })
      : undefined;
    return new SiglipPipeline(model, tokenizer, imageProcessor);
  }

  /** L2-normalised image embeddings, one Float32Array per image. */
  async embedImages(images: ImageInput[]): Promise<Float32Array[]> {
    if (!this.imageProcessor) throw new Error('this model was loaded without its vision tower');
    const t0 = performance.now();
    const rgb = [];
    for (let i = 0; i < images.length; i++) rgb.push(await loadImage(images[i], `images[${i}]`));
    const inputs = this.visionInputs(rgb);
    const t1 = performance.now();
    const out = this.model.forward(inputs);
    try {
      const e = out.imageEmbeds!;
      const data = (await e.data()) as Float32Array;
      this.lastTimings = { preprocessMs: t1 - t0, inferenceMs: performance.now() - t1 };
      return split(data, e.shape[0]);
    } finally {
      disposeOutputs(out);
      tf.dispose([inputs.pixelValues, inputs.pixelAttentionMask, inputs.spatialShapes]);
    }
  }

  /** L2-normalised text embeddings, one Float32Array per text. */
  async embedTexts(texts: string[]): Promise<Float32Array[]> {
    if (!this.tokenizer) throw new Error('this model was loaded without its text tower');
    const t0 = performance.now();
    const enc = this.tokenizer.encode(texts);
    const ids = tf.tensor2d(enc.inputIds, enc.shape, 'int32');
    const t1 = performance.now();
    const out = this.model.forward({ inputIds: ids });
    try {
      const e = out.textEmbeds!;
      const data = (await e.data()) as Float32Array;
      this.lastTimings = { preprocessMs: t1 - t0, inferenceMs: performance.now() - t1 };
      return split(data, e.shape[0]);
    } finally {
      disposeOutputs(out);
      ids.dispose();
    }
  }

  /** Scores of each label for one image: sigmoid(exp(logit_scale) * cos + logit_bias), in label order. */
  async classify(image: ImageInput, labels: string[]): Promise<Score[]> {
    if (!labels.length) throw new Error('classify: give at least one label');
    const t0 = performance.now();
    const [img] = await this.embedImages([image]);
    const pre = this.lastTimings.preprocessMs;
    const texts = await this.embedTexts(labels);
    const { scale, bias } = this.model.logitScaleAndBias();
    this.lastTimings = {
      preprocessMs: pre + this.lastTimings.preprocessMs,
      inferenceMs: performance.now() - t0 - pre - this.lastTimings.preprocessMs,
    };
    return labels.map((label, i) => {
      const logit = dot(img, texts[i]) * scale + bias;
      return { label, logit, score: 1 / (1 + Math.exp(-logit)) };
    });
  }

  private visionInputs(rgb: Awaited<ReturnType<typeof loadImage>>[]): {
    pixelValues: tf.Tensor;
    pixelAttentionMask?: tf.Tensor;
    spatialShapes?: tf.Tensor;
  } {
    const p = this.imageProcessor!;
    if (p instanceof Siglip2ImageProcessor) {
      const b = p.preprocess(rgb);
      return {
        pixelValues: tf.tensor(b.pixelValues, b.shape, 'float32'),
        pixelAttentionMask: tf.tensor2d(b.pixelAttentionMask, [b.shape[0], b.shape[1]], 'int32'),
        spatialShapes: tf.tensor2d(b.spatialShapes, [b.shape[0], 2], 'int32'),
      };
    }
    const b = p.preprocess(rgb);
    return { pixelValues: tf.tensor(b.pixelValues, b.shape, 'float32') };
  }
}

/** Cosine similarity of two L2-normalised embeddings. */
export function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

function split(data: Float32Array, n: number): Float32Array[] {
  const d = data.length / n;
  return Array.from({ length: n }, (_, i) => data.slice(i * d, (i + 1) * d));
}
