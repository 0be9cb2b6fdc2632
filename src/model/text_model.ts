import * as tf from '@tensorflow/tfjs';
import { SiglipEncoder } from '../layers/encoder.js';
import { LayerNorm } from '../layers/layer_norm.js';
import { SiglipTextEmbeddings } from '../layers/text_embeddings.js';
import { SiglipTextHead } from '../layers/text_head.js';
import type { SiglipTextConfig } from './config.js';
import { hostValues } from '../util/host_values.js';
import { towerOutputs, type TowerOutputs, withHiddenStateOutputs } from './tower_outputs.js';
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
  private hiddenModel?: tf.LayersModel;

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
    const hidden = opts.outputHiddenStates ?? false;
    if (opts.attentionMask) return this.predictWithMask(inputIds, opts.attentionMask, hidden);
    const model = hidden ? this.withHiddenStates() : this.model;
    const outputs = model.predict(inputIds, { batchSize: inputIds.shape[0] }) as tf.Tensor[];
    return towerOutputs(outputs, true, hidden);
  }

  /**
   * `text_model(input_ids, attention_mask)`: the same layers called directly with the key mask (re-applying
   * them symbolically would add graph nodes and change how the LayersModel disposes its weights).
   */
  private predictWithMask(inputIds: tf.Tensor, mask: tf.Tensor, hidden: boolean): TowerOutputs {
    if (
      mask.rank !== 2 ||
      mask.shape[0] !== inputIds.shape[0] ||
      mask.shape[1] !== inputIds.shape[1]
    ) {
      throw new Error(
        `attentionMask must have the shape of inputIds [${inputIds.shape.join(', ')}], got [${mask.shape.join(', ')}]`,
      );
    }
    const m = this.model;
    const states = tf.tidy(() => {
      const keyMask = mask.toFloat();
      const embedded = m.getLayer('embeddings').call(inputIds, {}) as tf.Tensor;
      const layers = m.getLayer('encoder').call([embedded, keyMask], {}) as tf.Tensor[];
      return [embedded, ...layers];
    });
    const [last, pooled] = tf.tidy(() => {
      const l = m.getLayer('final_layer_norm').call(states[states.length - 1], {}) as tf.Tensor;
      return [l, m.getLayer('head').call(l, {}) as tf.Tensor];
    });
    if (!hidden) tf.dispose(states);
    return {
      lastHiddenState: last,
      poolerOutput: pooled,
      ...(hidden ? { hiddenStates: states } : {}),
    };
  }

  /**
   * Validates token ids: int32 `[B, L]`, L <= max positions, every id in the vocabulary. The ids are read on the
   * host: the copy `readHostValues` remembered (as `prepareBatch` does before a training step), else synchronously.
   */
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
    const ids = hostValues(inputIds, 'inputIds');
    for (let i = 0; i < ids.length; i++) {
      if (ids[i] < 0 || ids[i] >= c.vocabSize) {
        throw new Error(
          `inputIds[${Math.floor(i / length)}][${i % length}] = ${ids[i]} is outside the vocabulary [0, ${c.vocabSize})`,
        );
      }
    }
  }

  private withHiddenStates(): tf.LayersModel {
    this.hiddenModel ??= withHiddenStateOutputs(this.model);
    return this.hiddenModel;
  }

  dispose(): void {
    this.model.dispose();
  }
}
