// What `--mode` trains: every weight, one tower, the heads only, or LoRA adapters; plus `--freeze` ranges.
import type { SiglipModel } from '../model/siglip_model.js';
import { type FreezeOptions, trainableParams } from '../train/freeze.js';
import { DEFAULT_LORA_TARGETS, LoraAdapters } from '../train/lora.js';
import type { Param } from '../train/params.js';

export const MODES = ['lora', 'full', 'vision', 'text', 'probe'] as const;
export type FinetuneMode = (typeof MODES)[number];

export interface ModeOptions {
  mode: FinetuneMode;
  /** `--freeze`, parsed. */
  freeze: FreezeOptions;
  loraRank: number;
  loraAlpha: number;
  loraTargets: string[];
  /** Seed of the LoRA initialisation. */
  seed: number;
}

export const DEFAULT_LORA_RANK = 8;

/**
 * Parses `--freeze`: comma-separated items `vision`, `text` (a whole tower), `vision:0-5` (encoder layers 0 to 5
 * inclusive), `text:embeddings` (the token / patch embeddings).
 */
export function parseFreeze(spec: string | undefined): FreezeOptions {
  const out: FreezeOptions = {};
  if (!spec) return out;
  for (const raw of spec.split(',')) {
    const item = raw.trim();
    const m = /^(vision|text)(?::(?:(\d+)-(\d+)|(\d+)|(embeddings)))?$/.exec(item);
    if (!m) {
      throw new Error(
        `--freeze ${JSON.stringify(spec)}: cannot read ${JSON.stringify(item)}; expected vision, text, ` +
          'vision:0-5 (layers 0 to 5), text:3 or text:embeddings, separated by commas',
      );
    }
    const tower = m[1] as 'vision' | 'text';
    if (m[2] !== undefined || m[4] !== undefined) {
      const from = Number(m[2] ?? m[4]);
      const to = Number(m[3] ?? m[4]);
      if (to < from) throw new Error(`--freeze ${item}: the range ends before it starts`);
      (out.layers ??= []).push({ tower, from, to: to + 1 });
    } else if (m[5]) {
      (out.embeddings ??= []).push(tower);
    } else {
      (out.towers ??= []).push(tower);
    }
  }
  return out;
}

/** The trainable parameters of a mode; LoRA modes also return the attached adapters. */
export function setUpMode(
  model: SiglipModel,
  o: ModeOptions,
): { params: Param[]; lora?: LoraAdapters } {
  const freeze: FreezeOptions = { ...o.freeze, towers: [...(o.freeze.towers ?? [])] };
  switch (o.mode) {
    case 'full':
      return { params: trainableParams(model, freeze) };
    case 'vision':
      freeze.towers?.push('text');
      return { params: trainableParams(model, freeze) };
    case 'text':
      freeze.towers?.push('vision');
      return { params: trainableParams(model, freeze) };
    case 'probe':
      // The vision pooling head, the text head and the logit scale / bias; both encoders and embeddings frozen.
      freeze.match = /^(vision|text):(?!head\/)/;
      return { params: trainableParams(model, freeze) };
    case 'lora': {
      // Validates layer ranges as trainableParams does.
      trainableParams(model, { layers: freeze.layers });
      const towers = (['vision', 'text'] as const).filter((t) => !freeze.towers?.includes(t));
      if (towers.length === 0)
        throw new Error('--freeze: both towers are frozen; nothing to train');
      const lora = LoraAdapters.attach(model, {
        rank: o.loraRank,
        alpha: o.loraAlpha,
        targets: o.loraTargets,
        towers,
        seed: o.seed,
      });
      const layerOf = (name: string) => Number(/^encoder\/layers\.(\d+)\//.exec(name)?.[1] ?? -1);
      const params = lora.params.filter(
        (p) =>
          !freeze.layers?.some(
            (r) => r.tower === p.tower && layerOf(p.name) >= r.from && layerOf(p.name) < r.to,
          ),
      );
      if (params.length === 0) {
        lora.remove();
        throw new Error('--freeze: every LoRA adapter is in a frozen layer; nothing to train');
      }
      return { params, lora };
    }
  }
}

export { DEFAULT_LORA_TARGETS };
