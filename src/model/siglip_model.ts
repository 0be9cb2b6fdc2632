import * as tf from '@tensorflow/tfjs';
import type { SiglipConfig } from './config.js';
import { buildScoresModel } from './scores_model.js';
import { SiglipTextModel } from './text_model.js';
import { disposeTowerOutputs, type TowerOutputs } from './tower_outputs.js';
import { type BuildOptions, SiglipVisionModel, type VisionInputs } from './vision_model.js';

export interface SiglipInputs extends Partial<VisionInputs> {
  /** `[B_text, L]` int32 token ids (padded to the full length; see the tokenizer). */
  inputIds?: tf.Tensor;
  /** Only for reproducing `text_model(input_ids, attention_mask)`; SigLIP itself uses none. */
  attentionMask?: tf.Tensor;
  outputHiddenStates?: boolean;
}

/** The dual model's outputs, named as in Hugging Face's `SiglipOutput`. */
export interface SiglipOutputs {
  /** `[B_image, B_text]` */
  logitsPerImage?: tf.Tensor2D;
  /** `[B_text, B_image]` */
  logitsPerText?: tf.Tensor2D;
  /** L2-normalised `[B_image, D]` */
  imageEmbeds?: tf.Tensor2D;
  /** L2-normalised `[B_text, D]` */
  textEmbeds?: tf.Tensor2D;
  vision?: TowerOutputs;
  text?: TowerOutputs;
}

/** Which towers to build or load. */
export type TowerChoice = 'both' | 'vision' | 'text';

/**
 * `SiglipModel` / `Siglip2Model`: the vision tower, the text tower and the scoring head, each a plain TF.js
 * LayersModel. Either tower may be absent (e.g. an app that only embeds images).
 */
export class SiglipModel {
  constructor(
    readonly config: SiglipConfig,
    readonly vision?: SiglipVisionModel,
    readonly text?: SiglipTextModel,
    readonly scores?: tf.LayersModel,
  ) {}

  static build(
    config: SiglipConfig,
    opts: BuildOptions & { towers?: TowerChoice } = {},
  ): SiglipModel {
    const towers = opts.towers ?? 'both';
    const vision =
      config.visionConfig && towers !== 'text'
        ? SiglipVisionModel.build(config.visionConfig, opts)
        : undefined;
    const text =
      config.textConfig && towers !== 'vision'
        ? SiglipTextModel.build(config.textConfig, opts)
        : undefined;
    const scores =
      vision && text && config.visionConfig?.visionUseHead
        ? buildScoresModel(vision.config.hiddenSize, text.config.projectionSize)
        : undefined;
    return new SiglipModel(config, vision, text, scores);
  }

  /** Every LayersModel of this model, by tower. */
  get parts(): { vision?: tf.LayersModel; text?: tf.LayersModel; scores?: tf.LayersModel } {
    return { vision: this.vision?.model, text: this.text?.model, scores: this.scores };
  }

  /**
   * Runs what the inputs allow: images through the vision tower, texts through the text tower, and the scores
   * when both are given. The caller owns (and disposes) every returned tensor: see `disposeOutputs`.
   */
  forward(inputs: SiglipInputs): SiglipOutputs {
    const out: SiglipOutputs = {};
    const hidden = inputs.outputHiddenStates ?? false;
    if (inputs.pixelValues) {
      if (!this.vision) throw new Error('this model was loaded without its vision tower');
      out.vision = this.vision.predict(inputs as VisionInputs, { outputHiddenStates: hidden });
    }
    if (inputs.inputIds) {
      if (!this.text) throw new Error('this model was loaded without its text tower');
      out.text = this.text.predict(inputs.inputIds, {
        attentionMask: inputs.attentionMask,
        outputHiddenStates: hidden,
      });
    }
    const image = out.vision?.poolerOutput;
    const text = out.text?.poolerOutput;
    if (this.scores && image && text) {
      // apply, not predict: the two inputs have different batch sizes. tidy drops the intermediates.
      const scores = this.scores;
      const [ie, te, lpi, lpt] = tf.tidy(
        () => scores.apply([image, text], { training: false }) as tf.Tensor2D[],
      );
      Object.assign(out, {
        imageEmbeds: ie,
        textEmbeds: te,
        logitsPerImage: lpi,
        logitsPerText: lpt,
      });
    } else {
      if (image) out.imageEmbeds = tf.tidy(() => image.div(tf.norm(image, 'euclidean', -1, true)));
      if (text) out.textEmbeds = tf.tidy(() => text.div(tf.norm(text, 'euclidean', -1, true)));
    }
    return out;
  }

  /** `exp(logit_scale)` and `logit_bias`, the calibration of the sigmoid scores. */
  logitScaleAndBias(): { scale: number; bias: number } {
    if (!this.scores) throw new Error('this model has no scoring head (it needs both towers)');
    const layer = this.scores.getLayer('logits');
    const [scale, bias] = layer.getWeights().map((w) => w.dataSync()[0]);
    return { scale: Math.exp(scale), bias };
  }

  dispose(): void {
    this.vision?.dispose();
    this.text?.dispose();
    this.scores?.dispose();
  }
}

/** Each main output's Hugging Face name (as the reference fixtures name it) and where it is in `SiglipOutputs`. */
const HF_OUTPUTS = [
  ['logits_per_image', (o: SiglipOutputs) => o.logitsPerImage],
  ['logits_per_text', (o: SiglipOutputs) => o.logitsPerText],
  ['image_embeds', (o: SiglipOutputs) => o.imageEmbeds],
  ['text_embeds', (o: SiglipOutputs) => o.textEmbeds],
  ['vision.last_hidden_state', (o: SiglipOutputs) => o.vision?.lastHiddenState],
  ['vision.pooler_output', (o: SiglipOutputs) => o.vision?.poolerOutput],
  ['text.last_hidden_state', (o: SiglipOutputs) => o.text?.lastHiddenState],
  ['text.pooler_output', (o: SiglipOutputs) => o.text?.poolerOutput],
] as const;

/** The Hugging Face names of the main outputs, in the order {@link outputsByHfName} gives them. */
export const HF_OUTPUT_NAMES: readonly string[] = HF_OUTPUTS.map(([name]) => name);

/**
 * The main outputs keyed by their Hugging Face names (`logits_per_image`, `vision.pooler_output`, …), as the
 * reference fixtures name them; absent outputs are left out. The tensors are the outputs' own (not copies).
 */
export function outputsByHfName(o: SiglipOutputs): Record<string, tf.Tensor> {
  const named: [string, tf.Tensor | undefined][] = HF_OUTPUTS.map(([name, get]) => [name, get(o)]);
  return Object.fromEntries(named.filter((e): e is [string, tf.Tensor] => e[1] !== undefined));
}

/** Disposes every tensor in a `SiglipOutputs`. */
export function disposeOutputs(o: SiglipOutputs): void {
  tf.dispose(
    [o.logitsPerImage, o.logitsPerText, o.imageEmbeds, o.textEmbeds].filter(
      (t): t is tf.Tensor2D => t !== undefined,
    ),
  );
  if (o.vision) disposeTowerOutputs(o.vision);
  if (o.text) disposeTowerOutputs(o.text);
}
