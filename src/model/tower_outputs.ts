import * as tf from '@tensorflow/tfjs';

/** What a tower returns, named as in Hugging Face's `BaseModelOutputWithPooling`. */
export interface TowerOutputs {
  /** `[B, N, D]`: every token after the final LayerNorm (for the vision tower: the dense patch features). */
  lastHiddenState: tf.Tensor;
  /** `[B, D]`: the pooled embedding before L2 normalisation (absent for a vision tower without head). */
  poolerOutput?: tf.Tensor;
  /** On request: the embeddings output, then the output of each encoder layer. */
  hiddenStates?: tf.Tensor[];
}

/** Splits a tower LayersModel's output list `[last, pooled?, hidden…]` into named fields. */
export function towerOutputs(
  outputs: tf.Tensor | tf.Tensor[],
  hasPooler: boolean,
  withHidden: boolean,
): TowerOutputs {
  const list = Array.isArray(outputs) ? outputs : [outputs];
  const [lastHiddenState, ...rest] = list;
  const result: TowerOutputs = { lastHiddenState };
  if (hasPooler) result.poolerOutput = rest.shift();
  if (withHidden) result.hiddenStates = rest;
  return result;
}

/** Disposes every tensor of a tower's outputs. */
export function disposeTowerOutputs(o: TowerOutputs): void {
  tf.dispose([
    o.lastHiddenState,
    ...(o.poolerOutput ? [o.poolerOutput] : []),
    ...(o.hiddenStates ?? []),
  ]);
}

/**
 * A tower's graph with the embeddings output and every encoder layer's output added as outputs (no layer is
 * applied again: the new model only exposes symbolic tensors the tower already has).
 */
export function withHiddenStateOutputs(model: tf.LayersModel): tf.LayersModel {
  const embedded = model.getLayer('embeddings').output as tf.SymbolicTensor;
  const states = model.getLayer('encoder').output as tf.SymbolicTensor[];
  return tf.model({ inputs: model.inputs, outputs: [...model.outputs, embedded, ...states] });
}
