import type { SiglipModel } from '../model/siglip_model.js';
import type { Tower } from '../model/weight_map.js';
import { type Param, modelParams } from './params.js';

/** Which weights stay fixed during training. */
export interface FreezeOptions {
  /** Whole towers: e.g. `['text']` trains only the image side (and the scores). */
  towers?: Tower[];
  /** Encoder layer ranges `[from, to)` of a tower, e.g. `{tower: 'vision', from: 0, to: 20}`. */
  layers?: { tower: 'vision' | 'text'; from: number; to: number }[];
  /** The embeddings layer of a tower (the 256000-row token table is most of the text tower's memory). */
  embeddings?: ('vision' | 'text')[];
  /** The vision pooling head / text head. */
  heads?: ('vision' | 'text')[];
  /** Any weight whose `tower:name` matches. */
  match?: RegExp;
}

/** The parameters left trainable after freezing. Throws when nothing is left. */
export function trainableParams(model: SiglipModel, freeze: FreezeOptions = {}): Param[] {
  const layerOf = (name: string) => {
    const m = /^encoder\/layers\.(\d+)\//.exec(name);
    return m ? Number(m[1]) : undefined;
  };
  for (const r of freeze.layers ?? []) {
    const n =
      r.tower === 'vision'
        ? model.config.visionConfig?.numHiddenLayers
        : model.config.textConfig?.numHiddenLayers;
    if (n === undefined || !(r.from >= 0 && r.to <= n && r.from < r.to)) {
      throw new Error(
        `freeze.layers: ${r.tower} layers [${r.from}, ${r.to}) are not a range within the ${n ?? 0} layers of that tower`,
      );
    }
  }
  const out = modelParams(model).filter((p) => {
    if (freeze.towers?.includes(p.tower)) return false;
    if (p.tower !== 'scores') {
      const tower = p.tower;
      if (freeze.embeddings?.includes(tower) && p.name.startsWith('embeddings/')) return false;
      if (freeze.heads?.includes(tower) && p.name.startsWith('head/')) return false;
      const layer = layerOf(p.name);
      if (
        layer !== undefined &&
        freeze.layers?.some((r) => r.tower === tower && layer >= r.from && layer < r.to)
      ) {
        return false;
      }
    }
    if (freeze.match?.test(`${p.tower}:${p.name}`)) return false;
    return true;
  });
  if (out.length === 0) throw new Error('freeze: every parameter is frozen; nothing to train');
  return out;
}
