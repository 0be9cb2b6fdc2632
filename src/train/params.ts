import * as tf from '@tensorflow/tfjs';
import type { SiglipModel } from '../model/siglip_model.js';
import { checkpointWeights, type Tower, type WeightEntry } from '../model/weight_map.js';

/** One weight of a `SiglipModel`, named as in its tower's LayersModel. */
export interface Param {
  tower: Tower;
  /** The TF.js weight name inside the tower, e.g. `encoder/layers.0/self_attn/q_proj/kernel`. */
  name: string;
  variable: tf.LayerVariable;
}

/** `tower:name`, the key params and gradients are stored under. */
export function paramKey(p: { tower: Tower; name: string }): string {
  return `${p.tower}:${p.name}`;
}

/** Every weight of the model (vision, text, scores), in the order the LayersModels list them. */
export function modelParams(model: SiglipModel): Param[] {
  const out: Param[] = [];
  for (const [tower, m] of Object.entries(model.parts) as [Tower, tf.LayersModel | undefined][]) {
    for (const variable of m?.weights ?? []) {
      out.push({ tower, name: variable.originalName, variable });
    }
  }
  return out;
}

/** The weight of `model` a checkpoint entry fills. */
export function paramsByKey(model: SiglipModel): Map<string, Param> {
  return new Map(modelParams(model).map((p) => [paramKey(p), p]));
}

/** A tensor in TF.js layout back to the checkpoint layout (inverse of the loader's transform). */
export function toHfLayout(t: tf.Tensor, entry: WeightEntry): tf.Tensor {
  switch (entry.transform) {
    case 'none':
      return t.clone();
    case 'transpose':
      return t.transpose();
    case 'conv':
      // [kh, kw, in, out] -> [out, in, kh, kw]
      return t.transpose([3, 2, 0, 1]);
  }
}

/**
 * Maps tensors keyed by `tower:tfName` (weights or gradients) to the checkpoint's names and layouts. Entries of
 * the checkpoint without a tensor in `byKey` are skipped. The returned tensors are new; the caller disposes them.
 */
export function toHfTensors(
  model: SiglipModel,
  byKey: ReadonlyMap<string, tf.Tensor>,
): Map<string, tf.Tensor> {
  const out = new Map<string, tf.Tensor>();
  for (const e of checkpointWeights(model.config)) {
    const t = byKey.get(paramKey({ tower: e.tower, name: e.tfName }));
    if (!t) continue;
    if (t.shape.join(',') !== e.tfShape.join(',')) {
      throw new Error(
        `${e.hfName}: TF.js tensor ${e.tower}:${e.tfName} has shape [${t.shape.join(', ')}], ` +
          `expected [${e.tfShape.join(', ')}]`,
      );
    }
    out.set(
      e.hfName,
      tf.tidy(() => toHfLayout(t, e)),
    );
  }
  return out;
}
