/**
 * The zero-shot pipeline: images and texts in, L2-normalised embeddings, calibrated sigmoid scores and dense patch
 * features out. Browser-safe (no Node import at module level): Node-only model resolution (file paths, the hub,
 * the conversion cache) lives in `./node.ts`.
 */
import * as tf from '@tensorflow/tfjs';
import type { SiglipConfig, VisionConfig } from '../model/config.js';
import { type SiglipModel, disposeOutputs } from '../model/siglip_model.js';
import { checkDigest } from '../loader/digest.js';
import { type LoadedSiglipModel, type LoadSiglipOptions, loadSiglip } from '../loader/load.js';
import type { FileDigest } from '../loader/manifest.js';
import {
  createImageProcessor,
  type PreprocessorConfigJson,
  type RgbImage,
  Siglip2ImageProcessor,
  SiglipImageProcessor,
} from '../processors/image.js';
import { type ImageInput, loadImage } from '../processors/load.js';
import { SiglipTokenizer, type TokenizerConfigJson } from '../processors/tokenizer.js';

/** HF's zero-shot-image-classification default hypothesis template. */
export const DEFAULT_TEMPLATE = 'This is a photo of {}.';
/** Images (or texts) run through a tower at once unless `batchSize` says otherwise. */
const DEFAULT_BATCH_SIZE = 8;

/** What the pipeline needs from a tokenizer (`SiglipTokenizer` fits; tests may pass their own). */
export interface TextTokenizer {
  encode(
    texts: string[],
    opts?: { lowercase?: boolean; maxLength?: number },
  ): { inputIds: Int32Array; shape: [number, number]; truncated: boolean[] };
}

export type ImageProcessor = SiglipImageProcessor | Siglip2ImageProcessor;

/** `[n, d]` row-major float32 embeddings, each row of unit length. */
export interface Embeddings {
  data: Float32Array;
  dims: [number, number];
}

/** One label's calibrated probability, as HF's zero-shot-image-classification pipeline returns it. */
export interface LabelScore {
  label: string;
  score: number;
}

/** `[nImages][nTexts]` matrices. */
export interface SimilarityResult {
  /** Cosine similarity of the normalised embeddings. */
  cosine: number[][];
  /** `cosine * exp(logit_scale) + logit_bias`: the model's logits_per_image. */
  logits: number[][];
  /** `sigmoid(logits)`: independent per-pair probabilities (SigLIP's scores do not sum to 1). */
  scores: number[][];
}

/** Last-layer patch tokens (after post_layernorm) of the vision tower. */
export interface PatchFeatures {
  /** `[B, N, D]` row-major. Fixed resolution: N = (image/patch)^2. NaFlex: N = maxNumPatches, padded. */
  data: Float32Array;
  dims: [number, number, number];
  /** Per image, the patch grid `[rows, cols]`; its `rows * cols` first tokens are real (the rest is padding). */
  grids: [number, number][];
}

export interface PipelineOptions {
  /** Lowercase texts before tokenizing (default true: SigLIP 2 was trained on lowercased text). */
  lowercase?: boolean;
  /** Default batch size of embedImages / embedTexts / classify (default 8). */
  batchSize?: number;
  /** NaFlex models: the patch budget per image (default: the preprocessor config's max_num_patches). */
  maxNumPatches?: number;
  /** Where warnings go (texts cut to the text model's length). Default: console.warn. */
  onWarning?: (message: string) => void;
}

export interface PipelineParts {
  model: SiglipModel;
  /** Default: a processor for the model's vision config (SigLIP defaults: mean = std = 0.5). */
  imageProcessor?: ImageProcessor;
  /** Needed for texts (embedTexts / classify). */
  tokenizer?: TextTokenizer;
  /** Why there is no tokenizer (used in the error when texts are given). */
  tokenizerMissing?: string;
}

export interface EmbedOptions {
  batchSize?: number;
}

export interface EmbedTextOptions extends EmbedOptions {
  lowercase?: boolean;
}

export interface ClassifyOptions extends EmbedTextOptions {
  /** `{}` is replaced by each label (default `This is a photo of {}.`). */
  template?: string;
  /** Keep only the k best labels per image. */
  topK?: number;
}

function positiveInt(v: number, what: string): number {
  if (!Number.isInteger(v) || v < 1)
    throw new Error(`${what} must be a positive integer, got ${v}`);
  return v;
}

/** The preprocessor config a model implies when it ships none (SigLIP defaults at the model's own size). */
function defaultPreprocessorConfig(vision: VisionConfig): PreprocessorConfigJson {
  const common = { do_resize: true, do_rescale: true, do_normalize: true, resample: 2 };
  if (vision.modelType === 'siglip_vision_model') {
    return {
      ...common,
      image_processor_type: 'SiglipImageProcessor',
      size: { height: vision.imageSize, width: vision.imageSize },
    };
  }
  return {
    ...common,
    image_processor_type: 'Siglip2ImageProcessor',
    patch_size: vision.patchSize,
    max_num_patches: 256,
  };
}

/** Checks that an image processor produces what the vision tower takes. */
function checkProcessor(vision: VisionConfig, p: ImageProcessor): void {
  if (vision.modelType === 'siglip_vision_model') {
    if (!(p instanceof SiglipImageProcessor)) {
      throw new Error(
        'the image processor is NaFlex (Siglip2ImageProcessor) but the vision tower takes fixed-size images',
      );
    }
    const { height, width } = p.settings;
    if (height !== vision.imageSize || width !== vision.imageSize) {
      throw new Error(
        `the image processor resizes to ${width}x${height} but the vision tower takes ${vision.imageSize}x${vision.imageSize} images (preprocessor_config.json does not match config.json)`,
      );
    }
  } else {
    if (!(p instanceof Siglip2ImageProcessor)) {
      throw new Error(
        'the vision tower is NaFlex (siglip2) but the image processor makes fixed-size images',
      );
    }
    if (p.settings.patchSize !== vision.patchSize) {
      throw new Error(
        `the image processor cuts ${p.settings.patchSize}-pixel patches but the vision tower takes ${vision.patchSize}`,
      );
    }
  }
}

function sigmoid(x: number): number {
  return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
}

function describe(text: string): string {
  return JSON.stringify(text.length > 60 ? `${text.slice(0, 57)}...` : text);
}

/** Zero-shot classification, embeddings and patch features with a SigLIP / SigLIP 2 model. */
export class SiglipPipeline {
  readonly model: SiglipModel;
  readonly imageProcessor?: ImageProcessor;
  readonly tokenizer?: TextTokenizer;
  readonly lowercase: boolean;
  readonly batchSize: number;
  private readonly tokenizerMissing?: string;
  private readonly warn: (message: string) => void;

  constructor(parts: PipelineParts, opts: PipelineOptions = {}) {
    this.model = parts.model;
    this.tokenizer = parts.tokenizer;
    this.tokenizerMissing = parts.tokenizerMissing;
    this.lowercase = opts.lowercase ?? true;
    this.batchSize = positiveInt(opts.batchSize ?? DEFAULT_BATCH_SIZE, 'batchSize');
    this.warn = opts.onWarning ?? ((m) => console.warn(`warning: ${m}`));
    const vision = this.model.vision?.config;
    if (vision) {
      const p =
        parts.imageProcessor ??
        createImageProcessor(defaultPreprocessorConfig(vision), {
          maxNumPatches: opts.maxNumPatches,
        });
      checkProcessor(vision, p);
      this.imageProcessor = p;
    }
  }

  /**
   * Builds a pipeline around a model from `loadSiglip`: its preprocessor_config.json and tokenizer.json (fetched
   * with `fetch` for http(s) models, read from disk in Node).
   */
  static async fromLoadedModel(
    model: LoadedSiglipModel,
    opts: PipelineOptions & { fetchFunc?: typeof fetch } = {},
  ): Promise<SiglipPipeline> {
    const parts = await partsFromFiles(
      model.config,
      model.processor.preprocessorConfig as PreprocessorConfigJson | undefined,
      model.processor.tokenizerConfig as TokenizerConfigJson | undefined,
      model.processor.files,
      {
        ...opts,
        digests: model.verification === 'verified' ? model.manifest?.digests : undefined,
      },
    );
    return new SiglipPipeline({ model, ...parts }, opts);
  }

  /** Loads a converted model (`siglip2 convert` output: URL, or a path in Node) and its processor files. */
  static async load(
    location: string,
    opts: PipelineOptions & LoadSiglipOptions = {},
  ): Promise<SiglipPipeline> {
    const model = await loadSiglip(location, opts);
    try {
      return await SiglipPipeline.fromLoadedModel(model, opts);
    } catch (e) {
      model.dispose();
      throw e;
    }
  }

  /** Text length every text is padded / truncated to: the text tower's positions (64 for SigLIP 2). */
  get textLength(): number {
    const t = this.model.text?.config;
    if (!t) throw new Error('this model was loaded without its text tower');
    return t.maxPositionEmbeddings;
  }

  /** Loads and preprocesses images in batches, runs the vision tower on each batch. */
  private async forImageBatches(
    images: ImageInput[],
    batchSize: number,
    run: (inputs: {
      pixelValues: tf.Tensor;
      pixelAttentionMask?: tf.Tensor;
      spatialShapes?: tf.Tensor;
    }) => void,
    onGrids?: (grids: [number, number][]) => void,
  ): Promise<void> {
    if (!this.model.vision || !this.imageProcessor) {
      throw new Error('this model was loaded without its vision tower');
    }
    if (!Array.isArray(images) || images.length === 0) {
      throw new Error('images: expected a non-empty array of images');
    }
    positiveInt(batchSize, 'batchSize');
    const processor = this.imageProcessor;
    for (let start = 0; start < images.length; start += batchSize) {
      const decoded: RgbImage[] = [];
      for (let i = start; i < Math.min(images.length, start + batchSize); i++) {
        const x = images[i];
        decoded.push(await loadImage(x, typeof x === 'string' ? x : `images[${i}]`));
      }
      const tensors: tf.Tensor[] = [];
      try {
        if (processor instanceof Siglip2ImageProcessor) {
          const b = processor.preprocess(decoded);
          const n = decoded.length;
          const maxP = b.shape[1];
          const pv = tf.tensor3d(b.pixelValues, b.shape);
          const mask = tf.tensor2d(b.pixelAttentionMask, [n, maxP], 'int32');
          const ss = tf.tensor2d(b.spatialShapes, [n, 2], 'int32');
          tensors.push(pv, mask, ss);
          onGrids?.(decoded.map((_, k) => [b.spatialShapes[2 * k], b.spatialShapes[2 * k + 1]]));
          run({ pixelValues: pv, pixelAttentionMask: mask, spatialShapes: ss });
        } else {
          const b = processor.preprocess(decoded);
          const pv = tf.tensor4d(b.pixelValues, b.shape);
          tensors.push(pv);
          const v = this.model.vision.config;
          const g = v.modelType === 'siglip_vision_model' ? v.imageSize / v.patchSize : 0;
          onGrids?.(decoded.map(() => [g, g]));
          run({ pixelValues: pv });
        }
      } finally {
        tf.dispose(tensors);
      }
    }
  }

  /** L2-normalised image embeddings `[n, d]`. */
  async embedImages(images: ImageInput[], opts: EmbedOptions = {}): Promise<Embeddings> {
    const rows: Float32Array[] = [];
    let d = 0;
    await this.forImageBatches(images, opts.batchSize ?? this.batchSize, (inputs) => {
      const out = this.model.forward(inputs);
      try {
        if (!out.imageEmbeds) throw new Error('this vision tower has no pooling head');
        d = out.imageEmbeds.shape[1];
        rows.push(out.imageEmbeds.dataSync() as Float32Array);
      } finally {
        disposeOutputs(out);
      }
    });
    return { data: concat(rows), dims: [images.length, d] };
  }

  /** Dense patch features: the vision tower's last hidden state `[B, N, D]` (after post_layernorm). */
  async patchFeatures(images: ImageInput[], opts: EmbedOptions = {}): Promise<PatchFeatures> {
    const rows: Float32Array[] = [];
    const grids: [number, number][] = [];
    let n = 0;
    let d = 0;
    await this.forImageBatches(
      images,
      opts.batchSize ?? this.batchSize,
      (inputs) => {
        const out = this.model.forward(inputs);
        try {
          const h = out.vision!.lastHiddenState;
          n = h.shape[1]!;
          d = h.shape[2]!;
          rows.push(h.dataSync() as Float32Array);
        } finally {
          disposeOutputs(out);
        }
      },
      (g) => grids.push(...g),
    );
    return { data: concat(rows), dims: [images.length, n, d], grids };
  }

  /**
   * Token ids of texts as the text tower reads them: lowercased (unless turned off), padded / truncated to the
   * tower's length (64 for SigLIP 2), no attention mask. Warns about each text that had to be cut.
   */
  tokenize(texts: string[], opts: { lowercase?: boolean } = {}): Int32Array {
    if (!this.tokenizer) {
      throw new Error(
        `this model has no tokenizer${this.tokenizerMissing ? ` (${this.tokenizerMissing})` : ''}`,
      );
    }
    const L = this.textLength;
    const enc = this.tokenizer.encode(texts, {
      lowercase: opts.lowercase ?? this.lowercase,
      maxLength: L,
    });
    if (enc.shape[0] !== texts.length || enc.shape[1] !== L) {
      throw new Error(
        `the tokenizer returned ids of shape [${enc.shape.join(', ')}], expected [${texts.length}, ${L}]`,
      );
    }
    enc.truncated.forEach((cut, i) => {
      if (cut) {
        this.warn(
          `texts[${i}] ${describe(texts[i])} is longer than the text model's ${L} tokens; it was truncated`,
        );
      }
    });
    const vocab = this.model.text!.config.vocabSize;
    for (let k = 0; k < enc.inputIds.length; k++) {
      const id = enc.inputIds[k];
      if (id < 0 || id >= vocab) {
        const i = Math.floor(k / L);
        throw new Error(
          `texts[${i}] ${describe(texts[i])}: token id ${id} is outside the text model's vocabulary ` +
            `(${vocab} entries): the tokenizer does not belong to this model`,
        );
      }
    }
    return enc.inputIds;
  }

  /** L2-normalised text embeddings `[n, d]`. */
  async embedTexts(texts: string[], opts: EmbedTextOptions = {}): Promise<Embeddings> {
    if (!this.model.text) throw new Error('this model was loaded without its text tower');
    if (!Array.isArray(texts) || texts.length === 0) {
      throw new Error('texts: expected a non-empty array of strings');
    }
    texts.forEach((t, i) => {
      if (typeof t !== 'string') throw new Error(`texts[${i}] is ${typeof t}, not a string`);
    });
    const batchSize = positiveInt(opts.batchSize ?? this.batchSize, 'batchSize');
    const ids = this.tokenize(texts, opts);
    return this.embedTokenIds(ids, texts.length, batchSize);
  }

  /** Text embeddings of ready token ids `[n, textLength]` (row-major). */
  async embedTokenIds(
    inputIds: Int32Array,
    n: number,
    batchSize = this.batchSize,
  ): Promise<Embeddings> {
    const L = this.textLength;
    if (inputIds.length !== n * L) {
      throw new Error(`inputIds: expected ${n} x ${L} = ${n * L} ids, got ${inputIds.length}`);
    }
    const rows: Float32Array[] = [];
    let d = 0;
    for (let start = 0; start < n; start += batchSize) {
      const m = Math.min(n, start + batchSize) - start;
      const t = tf.tensor2d(inputIds.subarray(start * L, (start + m) * L), [m, L], 'int32');
      const out = this.model.forward({ inputIds: t });
      try {
        d = out.textEmbeds!.shape[1];
        rows.push(out.textEmbeds!.dataSync() as Float32Array);
      } finally {
        disposeOutputs(out);
        t.dispose();
      }
    }
    return { data: concat(rows), dims: [n, d] };
  }

  /** Cosine similarities, logits and sigmoid scores of image embeddings against text embeddings. */
  similarity(imageEmbeds: Embeddings, textEmbeds: Embeddings): SimilarityResult {
    const [ni, d] = imageEmbeds.dims;
    const [nt, dt] = textEmbeds.dims;
    if (d !== dt) {
      throw new Error(`similarity: image embeddings have ${d} dimensions, text embeddings ${dt}`);
    }
    for (const [e, what] of [
      [imageEmbeds, 'imageEmbeds'],
      [textEmbeds, 'textEmbeds'],
    ] as const) {
      if (e.data.length !== e.dims[0] * e.dims[1]) {
        throw new Error(
          `similarity: ${what} has ${e.data.length} values, not ${e.dims[0]} x ${e.dims[1]}`,
        );
      }
    }
    const { scale, bias } = this.model.logitScaleAndBias();
    const cosine: number[][] = [];
    const logits: number[][] = [];
    const scores: number[][] = [];
    for (let i = 0; i < ni; i++) {
      const c: number[] = [];
      const l: number[] = [];
      const s: number[] = [];
      for (let j = 0; j < nt; j++) {
        let dot = 0;
        for (let k = 0; k < d; k++) dot += imageEmbeds.data[i * d + k] * textEmbeds.data[j * d + k];
        const logit = dot * scale + bias;
        c.push(dot);
        l.push(logit);
        s.push(sigmoid(logit));
      }
      cosine.push(c);
      logits.push(l);
      scores.push(s);
    }
    return { cosine, logits, scores };
  }

  /** The texts classify() feeds the text tower: the template with each label in place of `{}`. */
  static labelTexts(labels: string[], template = DEFAULT_TEMPLATE): string[] {
    if (!Array.isArray(labels) || labels.length === 0) {
      throw new Error('labels: the list of candidate labels is empty; give at least one label');
    }
    if (typeof template !== 'string' || !template.includes('{}')) {
      throw new Error(
        `template ${JSON.stringify(template)} has no {} where the label goes (e.g. "${DEFAULT_TEMPLATE}")`,
      );
    }
    return labels.map((label, i) => {
      if (typeof label !== 'string' || label.trim() === '') {
        throw new Error(`labels[${i}] is empty: every label needs some text`);
      }
      return template.split('{}').join(label);
    });
  }

  /**
   * Zero-shot classification: per image, every label with its sigmoid probability, sorted high to low (the shape
   * of HF's zero-shot-image-classification pipeline). A single image gives one list; an array gives one per image.
   */
  async classify(
    images: ImageInput,
    labels: string[],
    opts?: ClassifyOptions,
  ): Promise<LabelScore[]>;
  async classify(
    images: ImageInput[],
    labels: string[],
    opts?: ClassifyOptions,
  ): Promise<LabelScore[][]>;
  async classify(
    images: ImageInput | ImageInput[],
    labels: string[],
    opts: ClassifyOptions = {},
  ): Promise<LabelScore[] | LabelScore[][]> {
    const texts = SiglipPipeline.labelTexts(labels, opts.template);
    if (opts.topK !== undefined) positiveInt(opts.topK, 'topK');
    const single = !Array.isArray(images);
    const list = single ? [images] : images;
    const textEmbeds = await this.embedTexts(texts, opts);
    const imageEmbeds = await this.embedImages(list, opts);
    const { scores } = this.similarity(imageEmbeds, textEmbeds);
    const ranked = scores.map((row) =>
      row
        .map((score, j) => ({ label: labels[j], score }))
        .sort((a, b) => b.score - a.score)
        .slice(0, opts.topK ?? labels.length),
    );
    return single ? ranked[0] : ranked;
  }

  dispose(): void {
    this.model.dispose();
  }
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Reads a file named by a URL (fetch) or, in Node, a path. */
async function readBytes(location: string, fetchFunc?: typeof fetch): Promise<Uint8Array> {
  if (/^(https?|blob|data):/i.test(location)) {
    const f = fetchFunc ?? globalThis.fetch.bind(globalThis);
    const res = await f(location);
    if (!res.ok) throw new Error(`${location}: HTTP ${res.status}`);
    return new Uint8Array(await res.arrayBuffer());
  }
  const { readFile } = await import('node:fs/promises');
  const { fileURLToPath } = await import('node:url');
  return readFile(location.startsWith('file://') ? fileURLToPath(location) : location);
}

/** Image processor and tokenizer from a model's processor files (paths or URLs by file name). */
async function partsFromFiles(
  config: SiglipConfig,
  preprocessorConfig: PreprocessorConfigJson | undefined,
  tokenizerConfig: TokenizerConfigJson | undefined,
  files: Record<string, string>,
  opts: PipelineOptions & {
    fetchFunc?: typeof fetch;
    /** siglip.json's digests: the tokenizer file is checked against them as read. */
    digests?: Record<string, FileDigest>;
  } = {},
): Promise<Omit<PipelineParts, 'model'>> {
  const parts: Omit<PipelineParts, 'model'> = {};
  if (config.visionConfig) {
    parts.imageProcessor = createImageProcessor(
      preprocessorConfig ?? defaultPreprocessorConfig(config.visionConfig),
      { maxNumPatches: opts.maxNumPatches },
    );
  }
  if (config.textConfig) {
    const where = files['tokenizer.json'];
    if (where) {
      const bytes = await readBytes(where, opts.fetchFunc);
      const digest = opts.digests?.['tokenizer.json'];
      if (digest) await checkDigest(where, bytes, digest);
      let json: unknown;
      try {
        json = JSON.parse(new TextDecoder().decode(bytes));
      } catch (e) {
        throw new Error(`${where}: not valid JSON (${(e as Error).message})`, { cause: e });
      }
      parts.tokenizer = SiglipTokenizer.fromJSON(json, tokenizerConfig ?? {}, {
        maxLength: config.textConfig.maxPositionEmbeddings,
        lowercase: opts.lowercase ?? true,
      });
    } else {
      parts.tokenizerMissing =
        files['spiece.model'] || files['tokenizer.model']
          ? 'only a SentencePiece .model file came with it; make a tokenizer.json once with Python transformers: AutoTokenizer.from_pretrained(dir).save_pretrained(dir)'
          : 'no tokenizer.json came with the model';
    }
  }
  return parts;
}
