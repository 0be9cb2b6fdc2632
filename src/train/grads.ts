import * as tf from '@tensorflow/tfjs';
import type { SiglipModel } from '../model/siglip_model.js';
import { type PairBatch, pairLoss, prepareBatch } from './forward.js';
import { type Param, modelParams, paramKey } from './params.js';
import { registerWasmTrainingKernels } from './wasm_kernels.js';
import { withGradientTargets } from '../layers/kernels/recompute.js';
import { releasingGradients } from '../internals/tfjs.js';

export interface LossAndGrads {
  loss: tf.Scalar;
  /** d loss / d param, keyed by `tower:name` (see `paramKey`), in TF.js layout. */
  grads: Map<string, tf.Tensor>;
}

/**
 * The loss of one batch and its gradient with respect to `params` (default: every weight of the model).
 * Every returned tensor belongs to the caller. Asynchronous: what the forward pass needs on the host (token ids,
 * NaFlex grids) is read first without a synchronous device read (`prepareBatch`), so it runs on every backend,
 * webgpu in Node included; nothing else is read back (the loss stays a tensor).
 */
export async function lossAndGrads(
  model: SiglipModel,
  batch: PairBatch,
  params: readonly Param[] = modelParams(model),
  lossFn: (m: SiglipModel, b: PairBatch) => tf.Scalar = (m, b) => pairLoss(m, b, true),
): Promise<LossAndGrads> {
  if (params.length === 0) throw new Error('lossAndGrads: no trainable parameters were given');
  await prepareBatch(model, batch);
  registerWasmTrainingKernels();
  const vars = params.map((p) => p.variable.read() as tf.Variable);
  const byVarName = new Map(params.map((p, i) => [vars[i].name, p]));
  // variableGrads skips non-trainable variables: make the chosen ones trainable for the duration.
  const wasTrainable = vars.map((v) => v.trainable);
  vars.forEach((v) => (v.trainable = true));
  try {
    // tf.variableGrads, releasing each layer's saved activations and gradients as the backward pass leaves it.
    const { value, grads } = withGradientTargets(vars, () =>
      releasingGradients(() => lossFn(model, batch), vars, undefined, true),
    );
    if (value.rank !== 0) {
      tf.dispose([value, ...grads.filter((g): g is tf.Tensor => g !== null)]);
      throw new Error(
        `lossAndGrads: the loss function must return a scalar, got shape [${value.shape}]`,
      );
    }
    const out = new Map<string, tf.Tensor>();
    grads.forEach((g, i) => {
      const p = byVarName.get(vars[i].name);
      if (g === null) return;
      if (!p) {
        g.dispose();
        return;
      }
      out.set(paramKey(p), g);
    });
    // A parameter the gradient did not reach is an error, not zeros: zeros would train nothing in it while the
    // optimizer still decayed it (a lookup computed off the tape once did exactly that to the token table).
    const missing = params.filter((p) => !out.has(paramKey(p))).map(paramKey);
    if (missing.length > 0) {
      tf.dispose([value, ...out.values()]);
      throw new Error(
        `lossAndGrads: the loss has no gradient path to ${missing.length} trainable weight(s): ` +
          `${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', ...' : ''}. ` +
          'Freeze the weights the loss does not use (trainableParams) instead of training them blind.',
      );
    }
    return { loss: value as tf.Scalar, grads: out };
  } finally {
    vars.forEach((v, i) => (v.trainable = wasTrainable[i]));
  }
}
