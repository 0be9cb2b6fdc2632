import * as tf from '@tensorflow/tfjs';
import { existsSync, promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { type StreamedTensor, writeSafetensorsStreaming } from '../io/safetensors_writer.js';
import type { SiglipConfig } from '../model/config.js';
import type { SiglipModel } from '../model/siglip_model.js';
import { checkpointWeights } from '../model/weight_map.js';
import { paramsByKey, paramKey, toHfLayout } from './params.js';

function snake(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

function snakeObject(o: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [snake(k), v]));
}

/** A Hugging Face `config.json` object for a configuration (every field written, defaults included). */
export function configToHfJson(config: SiglipConfig): Record<string, unknown> {
  const arch: Record<SiglipConfig['modelType'], string> = {
    siglip: 'SiglipModel',
    siglip2: 'Siglip2Model',
    siglip_vision_model: 'SiglipVisionModel',
    siglip_text_model: 'SiglipTextModel',
  };
  const out: Record<string, unknown> = {
    architectures: [arch[config.modelType]],
    model_type: config.modelType,
    torch_dtype: 'float32',
  };
  if (config.modelType === 'siglip' || config.modelType === 'siglip2') {
    if (config.textConfig) out.text_config = snakeObject(config.textConfig);
    if (config.visionConfig) out.vision_config = snakeObject(config.visionConfig);
  } else {
    Object.assign(out, snakeObject((config.visionConfig ?? config.textConfig) as object));
    out.architectures = [arch[config.modelType]];
  }
  return out;
}

export interface ExportHfOptions {
  /** The `config.json` to write, as parsed JSON (e.g. the original checkpoint's). Default: serialised from the model. */
  configJson?: Record<string, unknown>;
  /** Copy `config.json` (and `preprocessor_config.json`, tokenizer files) from this folder when present. */
  sourceDir?: string;
  /** Split into `model-0000i-of-0000N.safetensors` + index when larger. Default 5 GB (as `save_pretrained`). */
  maxShardBytes?: number;
}

const SIDE_FILES = [
  'preprocessor_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'spiece.model',
  'tokenizer.model',
];

/**
 * Writes the model as a Hugging Face folder: `config.json` + `model.safetensors` (or shards with
 * `model.safetensors.index.json`), F32 tensors with the reference names and layouts (Linear `[out, in]`,
 * Conv2d `[out, in, kh, kw]`), written tensor by tensor. Merge LoRA adapters first (`LoraAdapters.merge`).
 * Untouched weights are written bit-exactly as they were loaded.
 */
export async function exportHf(
  model: SiglipModel,
  dir: string,
  opts: ExportHfOptions = {},
): Promise<{ files: string[]; bytes: number }> {
  await fsp.mkdir(dir, { recursive: true });
  const params = paramsByKey(model);
  const entries = checkpointWeights(model.config).filter((e) =>
    params.has(paramKey({ tower: e.tower, name: e.tfName })),
  );
  if (entries.length === 0) throw new Error('exportHf: the model has no weights to export');
  const tensors: StreamedTensor[] = entries.map((e) => ({
    name: e.hfName,
    shape: e.hfShape,
    data: async () => {
      const p = params.get(paramKey({ tower: e.tower, name: e.tfName }));
      if (!p) throw new Error(`internal: no weight for ${e.hfName}`);
      const t = tf.tidy(() => toHfLayout(p.variable.read(), e));
      const data = (await t.data()) as Float32Array;
      t.dispose();
      return data;
    },
  }));
  const max = opts.maxShardBytes ?? 5e9;
  const shards: StreamedTensor[][] = [[]];
  let size = 0;
  for (const t of tensors) {
    const bytes = t.shape.reduce((a, b) => a * b, 1) * 4;
    if (size > 0 && size + bytes > max) {
      shards.push([]);
      size = 0;
    }
    shards[shards.length - 1].push(t);
    size += bytes;
  }
  const files: string[] = [];
  let total = 0;
  if (shards.length === 1) {
    total += await writeSafetensorsStreaming(join(dir, 'model.safetensors'), shards[0]);
    files.push('model.safetensors');
  } else {
    const weightMap: Record<string, string> = {};
    let dataBytes = 0;
    for (let i = 0; i < shards.length; i++) {
      const name = `model-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`;
      total += await writeSafetensorsStreaming(join(dir, name), shards[i]);
      for (const t of shards[i]) {
        weightMap[t.name] = name;
        dataBytes += t.shape.reduce((a, b) => a * b, 1) * 4;
      }
      files.push(name);
    }
    const index = { metadata: { total_size: dataBytes }, weight_map: weightMap };
    await fsp.writeFile(join(dir, 'model.safetensors.index.json'), JSON.stringify(index, null, 2));
    files.push('model.safetensors.index.json');
  }
  const src = opts.sourceDir;
  if (opts.configJson) {
    await fsp.writeFile(join(dir, 'config.json'), JSON.stringify(opts.configJson, null, 2) + '\n');
  } else if (src && existsSync(join(src, 'config.json'))) {
    await fsp.copyFile(join(src, 'config.json'), join(dir, 'config.json'));
  } else {
    const json = configToHfJson(model.config);
    await fsp.writeFile(join(dir, 'config.json'), JSON.stringify(json, null, 2) + '\n');
  }
  files.push('config.json');
  if (src) {
    for (const f of SIDE_FILES) {
      if (existsSync(join(src, f))) {
        await fsp.copyFile(join(src, f), join(dir, f));
        files.push(f);
      }
    }
  }
  return { files, bytes: total };
}
