import type * as tf from '@tensorflow/tfjs';
import { assertFitsBinding, bindingLimit } from '../backends/binding.js';
import { TOKEN_TABLE_WEIGHT } from '../layers/text_embeddings.js';

/** True for weights the model never binds whole on webgpu (the token table is looked up from row shards). */
function isShardableWeight(name: string): boolean {
  return name === TOKEN_TABLE_WEIGHT || name.endsWith(`/${TOKEN_TABLE_WEIGHT}`);
}

/**
 * Checks every weight of the given LayersModels against the active WebGPU storage-buffer binding limit (a no-op
 * off webgpu) and throws naming the first weight that is over it and cannot be split. `where` prefixes the
 * message (e.g. the model's folder).
 */
export function assertWeightsFitBinding(
  models: readonly (tf.LayersModel | undefined)[],
  where: string,
  limit: number | undefined = bindingLimit(),
): void {
  if (limit === undefined) return;
  for (const m of models) {
    for (const w of m?.weights ?? []) {
      if (isShardableWeight(w.originalName)) continue;
      try {
        assertFitsBinding(`${m!.name}/${w.originalName}`, w.shape as number[], 4, limit);
      } catch (e) {
        throw new Error(`${where}: ${(e as Error).message}`, { cause: e });
      }
    }
  }
}
