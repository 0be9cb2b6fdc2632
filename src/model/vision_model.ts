import * as tf from '@tensorflow/tfjs';
import { SiglipEncoder } from '../layers/encoder.js';
import { LayerNorm } from '../layers/layer_norm.js';
import { SiglipMultiheadAttentionPoolingHead } from '../layers/pooling_head.js';
import { SiglipVisionEmbeddings } from '../layers/vision_embeddings.js';
import type { WeightInit } from '../layers/base.js';
import type { SiglipVisionConfig, VisionConfig } from './config.js';
import { towerOutputs, type TowerOutputs, withHiddenStateOutputs } from './tower_outputs.js';

/** Inputs of the vision tower. NaFlex towers also take a patch mask and the (h, w) patch grid of each image. */
export interface VisionInputs {
  /** Fixed resolution: `[B, C, H, W]`. NaFlex: `[B, maxPatches, C*p*p]`. float32. */
  pixelValues: tf.Tensor;
  /** NaFlex: `[B, maxPatches]`, 1 for real patches, 0 for padding. */
  pixelAttentionMask?: tf.Tensor;
  /** NaFlex: `[B, 2]` int32 `(h, w)` patches per image. */
  spatialShapes?: tf.Tensor;
}

export interface BuildOptions {
  /** `zeros` when a checkpoint is loaded next (fast), `random` for benchmarks and from-scratch training. */
  weightInit?: WeightInit;
}

/**
 * The vision tower (`SiglipVisionTransformer`): a TF.js LayersModel `pixel_values -> [last_hidden_state,
 * pooler_output]` with layers `embeddings`, `encoder`, `post_layernorm`, `head`.
 */
export class SiglipVisionModel {
  private hiddenModel?: tf.LayersModel;

  constructor(
    readonly config: VisionConfig,
    /** The plain TF.js model; what the converter saves and `tf.loadLayersModel` returns. */
    readonly model: tf.LayersModel,
  ) {}

  static build(config: VisionConfig, opts: BuildOptions = {}): SiglipVisionModel {
    if (config.modelType !== 'siglip_vision_model') {
      return buildNaflex(config, opts);
    }
    return new SiglipVisionModel(config, buildFixedResolution(config, opts));
  }

  /** Runs the tower. Hidden states are `[embeddings, after layer 1, …, after layer L]` (before post_layernorm). */
  predict(inputs: VisionInputs, opts: { outputHiddenStates?: boolean } = {}): TowerOutputs {
    const feeds = this.feeds(inputs);
    const model = opts.outputHiddenStates ? this.withHiddenStates() : this.model;
    try {
      const outputs = model.predict(feeds, { batchSize: feeds[0].shape[0] }) as
        tf.Tensor | tf.Tensor[];
      return towerOutputs(outputs, this.config.visionUseHead, opts.outputHiddenStates ?? false);
    } finally {
      // feeds() may convert inputs (e.g. a NaFlex mask to float32): free the copies, never the caller's tensors.
      const given = new Set<tf.Tensor | undefined>(Object.values(inputs) as tf.Tensor[]);
      tf.dispose(feeds.filter((t) => !given.has(t)));
    }
  }

  /** Checks the inputs and orders them as the LayersModel expects. */
  feeds(inputs: VisionInputs): tf.Tensor[] {
    const { pixelValues } = inputs;
    const c = this.config;
    if (!(pixelValues instanceof tf.Tensor)) throw new Error('pixelValues must be a tf.Tensor');
    if (pixelValues.dtype !== 'float32') {
      throw new Error(`pixelValues must be float32, got ${pixelValues.dtype}`);
    }
    if (c.modelType === 'siglip_vision_model') {
      const expected = [c.numChannels, c.imageSize, c.imageSize];
      const [, ...rest] = pixelValues.shape;
      if (pixelValues.rank !== 4 || rest.some((d, i) => d !== expected[i])) {
        throw new Error(
          `pixelValues must have shape [batch, ${expected.join(', ')}], got [${pixelValues.shape.join(', ')}]`,
        );
      }
      return [pixelValues];
    }
    return naflexFeeds(c, inputs);
  }

  private withHiddenStates(): tf.LayersModel {
    this.hiddenModel ??= withHiddenStateOutputs(this.model);
    return this.hiddenModel;
  }

  dispose(): void {
    this.model.dispose();
  }
}

function buildFixedResolution(c: SiglipVisionConfig, opts: BuildOptions): tf.LayersModel {
  const pixels = tf.input({
    shape: [c.numChannels, c.imageSize, c.imageSize],
    name: 'pixel_values',
  });
  const embeddings = new SiglipVisionEmbeddings({
    name: 'embeddings',
    hiddenSize: c.hiddenSize,
    patchSize: c.patchSize,
    imageSize: c.imageSize,
    numChannels: c.numChannels,
    weightInit: opts.weightInit,
  });
  return encoderAndHead(c, pixels, embeddings.apply(pixels) as tf.SymbolicTensor, undefined, opts);
}

/** The part both vision variants share: encoder, post_layernorm and the MAP head. */
export function encoderAndHead(
  c: VisionConfig,
  inputs: tf.SymbolicTensor | tf.SymbolicTensor[],
  embedded: tf.SymbolicTensor,
  keyMask: tf.SymbolicTensor | undefined,
  opts: BuildOptions,
): tf.LayersModel {
  const dims = {
    hiddenSize: c.hiddenSize,
    numHeads: c.numAttentionHeads,
    intermediateSize: c.intermediateSize,
    layerNormEps: c.layerNormEps,
    hiddenAct: c.hiddenAct,
    weightInit: opts.weightInit,
  };
  const encoder = new SiglipEncoder({ name: 'encoder', numLayers: c.numHiddenLayers, ...dims });
  const states = encoder.apply(keyMask ? [embedded, keyMask] : embedded) as tf.SymbolicTensor[];
  const postLn = new LayerNorm({
    name: 'post_layernorm',
    epsilon: c.layerNormEps,
    weightInit: opts.weightInit,
  });
  const last = postLn.apply(states[states.length - 1]) as tf.SymbolicTensor;
  const outputs = [last];
  if (c.visionUseHead) {
    const head = new SiglipMultiheadAttentionPoolingHead({ name: 'head', ...dims });
    outputs.push(head.apply(keyMask ? [last, keyMask] : last) as tf.SymbolicTensor);
  }
  return tf.model({ inputs, outputs, name: 'vision_model' });
}

// NaFlex (model_type siglip2) is added by its own module; until then it is refused clearly.
let naflexBuilder: ((c: VisionConfig, opts: BuildOptions) => SiglipVisionModel) | undefined;
let naflexFeedsFn: ((c: VisionConfig, inputs: VisionInputs) => tf.Tensor[]) | undefined;

/** Registers the NaFlex tower implementation (called by the NaFlex module on import). */
export function registerNaflex(
  build: (c: VisionConfig, opts: BuildOptions) => SiglipVisionModel,
  feeds: (c: VisionConfig, inputs: VisionInputs) => tf.Tensor[],
): void {
  naflexBuilder = build;
  naflexFeedsFn = feeds;
}

function buildNaflex(c: VisionConfig, opts: BuildOptions): SiglipVisionModel {
  if (!naflexBuilder)
    throw new Error(`vision model_type ${c.modelType} (NaFlex) is not supported yet`);
  return naflexBuilder(c, opts);
}

function naflexFeeds(c: VisionConfig, inputs: VisionInputs): tf.Tensor[] {
  if (!naflexFeedsFn)
    throw new Error(`vision model_type ${c.modelType} (NaFlex) is not supported yet`);
  return naflexFeedsFn(c, inputs);
}
