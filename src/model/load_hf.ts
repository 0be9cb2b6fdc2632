import * as tf from '@tensorflow/tfjs';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { assertWeightsFitBinding } from './binding_check.js';
import { CheckpointReader, checkCheckpointTensors } from './checkpoint.js';
import { parseConfig, type SiglipConfig } from './config.js';
import { SiglipModel, type TowerChoice } from './siglip_model.js';
import { checkpointWeights, type WeightEntry } from './weight_map.js';
import { ConfigError, FileAccessError } from '../util/errors.js';

export interface LoadProgress {
  /** Tensors loaded so far and in all. */
  loaded: number;
  total: number;
  name: string;
}

export interface LoadHfOptions {
  towers?: TowerChoice;
  onProgress?: (p: LoadProgress) => void;
  /** Called with checkpoint tensors the model does not use (default: a console warning). */
  onUnused?: (names: string[]) => void;
}

/** Reads and parses `<dir>/config.json`. */
export async function readConfig(dir: string): Promise<SiglipConfig> {
  const path = join(dir, 'config.json');
  let text: string;
  try {
    text = await fsp.readFile(path, 'utf8');
  } catch (e) {
    throw new FileAccessError(
      `${path}: cannot read the model configuration (${(e as Error).message})`,
      path,
      { cause: e },
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${path}: not valid JSON (${(e as Error).message})`, path, undefined, {
      cause: e,
    });
  }
  return parseConfig(json, path);
}

/** Permutes/transposes a checkpoint tensor into the TF.js layout. */
function toTfLayout(t: tf.Tensor, entry: WeightEntry): tf.Tensor {
  switch (entry.transform) {
    case 'none':
      return t.clone();
    case 'transpose':
      return t.transpose();
    case 'conv':
      return t.transpose([2, 3, 1, 0]);
  }
}

/**
 * Loads a Hugging Face checkpoint folder (`config.json` + `model.safetensors` or a sharded
 * `model.safetensors.index.json`) straight into a TF.js `SiglipModel`. Tensors are streamed one at a time;
 * F16/BF16 are upcast to float32. Every expected tensor must be present with the expected shape.
 */
export async function loadHfCheckpoint(
  dir: string,
  opts: LoadHfOptions = {},
): Promise<SiglipModel> {
  const config = await readConfig(dir);
  const reader = await CheckpointReader.open(dir);
  let model: SiglipModel | undefined;
  try {
    const all = checkpointWeights(config);
    const towers = opts.towers ?? 'both';
    const wanted = all.filter((e) => towers === 'both' || e.tower === towers);
    checkCheckpointTensors(reader, wanted);
    const known = new Set(all.map((e) => e.hfName));
    const unused = reader.names.filter((n) => !known.has(n));
    if (unused.length) {
      (
        opts.onUnused ??
        ((names) => console.warn(`${dir}: unused checkpoint tensors: ${names.join(', ')}`))
      )(unused);
    }

    model = SiglipModel.build(config, { weightInit: 'zeros', towers });
    assertWeightsFitBinding(Object.values(model.parts), dir);
    const variables = new Map<string, tf.LayerVariable>();
    const parts = model.parts;
    for (const [tower, m] of Object.entries(parts)) {
      for (const w of m?.weights ?? []) variables.set(`${tower}:${w.originalName}`, w);
    }
    let loaded = 0;
    for (const e of wanted) {
      const variable = variables.get(`${e.tower}:${e.tfName}`);
      if (!variable)
        throw new Error(`internal: no TF.js weight ${e.tower}:${e.tfName} for ${e.hfName}`);
      const t = await reader.read(e.hfName);
      tf.tidy(() => {
        const raw = tf.tensor(t.data as Float32Array, t.shape, 'float32');
        variable.write(toTfLayout(raw, e));
      });
      loaded++;
      opts.onProgress?.({ loaded, total: wanted.length, name: e.hfName });
    }
    return model;
  } catch (e) {
    model?.dispose();
    throw e;
  } finally {
    await reader.close();
  }
}
