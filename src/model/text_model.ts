import * as tf from '@tensorflow/tfjs';
import { SiglipEncoder } from '../layers/encoder.js';
import { LayerNorm } from '../layers/layer_norm.js';
import { SiglipTextEmbeddings } from '../layers/text_embeddings.js';
import { SiglipTextHead } from '../layers/text_head.js';
import type { SiglipTextConfig } from './config.js';
import { towerOutputs, type TowerOutputs } from './tower_outputs.js';
import type { BuildOptions } from './vision_model.js';

export interface TextPredictOptions {
  /**
   * `[B, L]` 1/0 mask of real tokens. SigLIP's processors send none (pads are attended to, and the pooled
   * output is the LAST position); pass one only to reproduce `text_model(input_ids, attention_mask)`.
   */
  attentionMask?: tf.Tensor;
  outputHiddenStates?: boolean;
}

/**
 * The text tower (`SiglipTextTransformer`): a TF.js LayersModel `input_ids -> [last_hidden_state,
 * pooler_output]` with layers `embeddings`, `encoder`, `final_layer_norm`, `head`.
 */
export class SiglipTextModel {
  private readonly variants = new Map<string, tf.LayersModel>();

  constructor(
    readonly config: SiglipTextConfig,
    readonly model: tf.LayersModel,
  ) {}

  static build(config: SiglipTextConfig, opts: BuildOptions = {}): SiglipTextModel {
    const c = config;
    const ids = tf.input({ shape: [null], dtype: 'int32', name: 'input_ids' });
    const embeddings = new SiglipTextEmbeddings({
      name: 'embeddings',
      hiddenSize: c.hiddenSize,
      vocabSize: c.vocabSize,
      maxPositionEmbeddings: c.maxPositionEmbeddings,
      weightInit: opts.weightInit,
    });
    const encoder = new SiglipEncoder({
      name: 'encoder',
      numLayers: c.numHiddenLayers,
      hiddenSize: c.hiddenSize,
      numHeads: c.numAttentionHeads,
      intermediateSize: c.intermediateSize,
      layerNormEps: c.layerNormEps,
      hiddenAct: c.hiddenAct,
      weightInit: opts.weightInit,
    });
    const finalLn = new LayerNorm({
      name: 'final_layer_norm',
      epsilon: c.layerNormEps,
      weightInit: opts.weightInit,
    });
    const head = new SiglipTextHead({
      name: 'head',
      projectionSize: c.projectionSize,
      weightInit: opts.weightInit,
    });
    const states = encoder.apply(embeddings.apply(ids)) as tf.SymbolicTensor[];
    const last = finalLn.apply(states[states.length - 1]) as tf.SymbolicTensor;
    const pooled = head.apply(last) as tf.SymbolicTensor;
    const model = tf.model({ inputs: ids, outputs: [last, pooled], name: 'text_model' });
    return new SiglipTextModel(config, model);
  }

  predict(inputIds: tf.Tensor, opts: TextPredictOptions = {}): TowerOutputs {
    this.checkIds(inputIds);
    const feeds = [inputIds];
    if (opts.attentionMask) {
      const m = opts.attentionMask;
      if (m.rank !== 2 || m.shape[0] !== inputIds.shape[0] || m.shape[1] !== inputIds.shape[1]) {
        throw new Error(
          `attentionMask must have the shape of inputIds [${inputIds.shape.join(', ')}], got [${m.shape.join(', ')}]`,
        );
      }
      feeds.push(m.dtype === 'float32' ? m : m.toFloat());
    }
    const hidden = opts.outputHiddenStates ?? false;
    const model = this.variant(Boolean(opts.attentionMask), hidden);
    const outputs = model.predict(feeds, { batchSize: inputIds.shape[0] }) as tf.Tensor[];
    if (feeds[1] && feeds[1] !== opts.attentionMask) feeds[1].dispose();
    return towerOutputs(outputs, true, hidden);
  }

  /** Validates token ids: int32 `[B, L]`, L <= max positions, every id in the vocabulary. */
  checkIds(inputIds: tf.Tensor): void {
    const c = this.config;
    if (!(inputIds instanceof tf.Tensor)) throw new Error('inputIds must be a tf.Tensor');
    if (inputIds.dtype !== 'int32')
      throw new Error(`inputIds must be int32, got ${inputIds.dtype}`);
    const length = inputIds.shape[1] ?? 0;
    if (inputIds.rank !== 2 || length > c.maxPositionEmbeddings || length < 1) {
      throw new Error(
        `inputIds must have shape [batch, length] with 1 <= length <= ${c.maxPositionEmbeddings}, ` +
          `got [${inputIds.shape.join(', ')}]`,
      );
    }
    const ids = inputIds.dataSync();
    for (let i = 0; i < ids.length; i++) {
      if (ids[i] < 0 || ids[i] >= c.vocabSize) {
        throw new Error(
          `inputIds[${Math.floor(i / length)}][${i % length}] = ${ids[i]} is outside the vocabulary [0, ${c.vocabSize})`,
        );
      }
    }
  }

  /** The LayersModel for a combination of optional inputs and outputs, derived from the same layers. */
  private variant(withMask: boolean, withHidden: boolean): tf.LayersModel {
    if (!withMask && !withHidden) return this.model;
    const key = `${withMask}-${withHidden}`;
    let m = this.variants.get(key);
    if (!m) {
      const base = this.model;
      const embedded = base.getLayer('embeddings').output as tf.SymbolicTensor;
      let states = base.getLayer('encoder').output as tf.SymbolicTensor[];
      let outputs = base.outputs;
      const inputs = [...base.inputs];
      if (withMask) {
        const mask = tf.input({ shape: [null], name: 'attention_mask' });
        inputs.push(mask);
        states = base.getLayer('encoder').apply([embedded, mask]) as tf.SymbolicTensor[];
        const last = base
          .getLayer('final_layer_norm')
          .apply(states[states.length - 1]) as tf.SymbolicTensor;
        outputs = [last, base.getLayer('head').apply(last) as tf.SymbolicTensor];
      }
      m = tf.model({ inputs, outputs: withHidden ? [...outputs, embedded, ...states] : outputs });
      this.variants.set(key, m);
    }
    return m;
  }

  dispose(): void {
    this.model.dispose();
  }
}
