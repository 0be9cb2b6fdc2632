import * as tf from '@tensorflow/tfjs';
import { existsSync, promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { encodeSafetensors, readSafetensors } from '../io/safetensors.js';
import type { SiglipModel } from '../model/siglip_model.js';
import type { LoraAdapters } from './lora.js';
import type { Trainer } from './trainer.js';

/** `trainer.json` of a training checkpoint. */
export interface TrainCheckpointInfo {
  format: 'siglip2-tfjs-train-checkpoint';
  version: 1;
  /** Optimizer steps taken. */
  step: number;
  /** The trained parameters (`tower:name`). */
  params: string[];
  towers: string[];
  lora?: { rank: number; alpha: number; adapters: string[] };
}

/** A Node `tf.io.IOHandler` writing `model.json` + `weights.bin` into a folder (the TF.js layers format). */
export function folderSaveHandler(dir: string): tf.io.IOHandler {
  return {
    save: async (artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> => {
      await fsp.mkdir(dir, { recursive: true });
      const data = artifacts.weightData
        ? tf.io.CompositeArrayBuffer.join(artifacts.weightData)
        : new ArrayBuffer(0);
      const modelJson = {
        format: 'layers-model',
        generatedBy: `TensorFlow.js tfjs-layers v${tf.version_layers}`,
        convertedBy: 'siglip2-tfjs train checkpoint',
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs ?? [] }],
      };
      await fsp.writeFile(join(dir, 'weights.bin'), Buffer.from(data));
      await fsp.writeFile(join(dir, 'model.json'), JSON.stringify(modelJson));
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    },
  };
}

/** Reads the weights of a `model.json` + `weights.bin` folder (as written by `folderSaveHandler`). */
export async function readFolderWeights(dir: string): Promise<tf.NamedTensorMap> {
  const path = join(dir, 'model.json');
  let json: { weightsManifest?: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[] };
  try {
    json = JSON.parse(await fsp.readFile(path, 'utf8')) as typeof json;
  } catch (e) {
    throw new Error(`${path}: cannot read the model description (${(e as Error).message})`, {
      cause: e,
    });
  }
  const specs: tf.io.WeightsManifestEntry[] = [];
  const buffers: ArrayBuffer[] = [];
  for (const group of json.weightsManifest ?? []) {
    specs.push(...group.weights);
    for (const p of group.paths) {
      const b = await fsp.readFile(join(dir, p));
      buffers.push(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer);
    }
  }
  return tf.io.decodeWeights(tf.io.CompositeArrayBuffer.join(buffers), specs);
}

/**
 * Saves a training checkpoint into `dir`:
 * - `<tower>/model.json` + `<tower>/weights.bin` for each tower's LayersModel (`vision`, `text`, `scores`), the
 *   TF.js layers format, so a tower also loads with `tf.loadLayersModel`;
 * - `optimizer.safetensors`: the AdamW moments `m.<tower:name>`, `v.<tower:name>`;
 * - `lora.safetensors` when adapters are attached (saved unmerged);
 * - `trainer.json`: the step and the list of trained parameters.
 */
export async function saveTrainCheckpoint(
  dir: string,
  trainer: Trainer,
  lora?: LoraAdapters,
): Promise<TrainCheckpointInfo> {
  await fsp.mkdir(dir, { recursive: true });
  const parts = trainer.model.parts;
  const towers: string[] = [];
  for (const [tower, m] of Object.entries(parts)) {
    if (!m) continue;
    await m.save(folderSaveHandler(join(dir, tower)));
    towers.push(tower);
  }
  const state = trainer.optimizer.getState();
  await writeTensors(join(dir, 'optimizer.safetensors'), state.tensors, {
    step: String(state.step),
  });
  tf.dispose([...state.tensors.values()]);
  let loraInfo: TrainCheckpointInfo['lora'];
  if (lora) {
    const w = lora.getWeights();
    await writeTensors(join(dir, 'lora.safetensors'), w, {
      rank: String(lora.rank),
      alpha: String(lora.alpha),
    });
    loraInfo = { rank: lora.rank, alpha: lora.alpha, adapters: [...w.keys()] };
    tf.dispose([...w.values()]);
  }
  const info: TrainCheckpointInfo = {
    format: 'siglip2-tfjs-train-checkpoint',
    version: 1,
    step: state.step,
    params: trainer.params.map((p) => `${p.tower}:${p.name}`),
    towers,
    lora: loraInfo,
  };
  await fsp.writeFile(join(dir, 'trainer.json'), JSON.stringify(info, null, 2) + '\n');
  return info;
}

async function writeTensors(
  path: string,
  tensors: ReadonlyMap<string, tf.Tensor>,
  metadata: Record<string, string>,
): Promise<void> {
  const list = [];
  for (const [name, t] of tensors) {
    list.push({ name, shape: t.shape, data: (await t.data()) as Float32Array });
  }
  await fsp.writeFile(path, encodeSafetensors(list, { format: 'siglip2-tfjs', ...metadata }));
}

async function readTensors(path: string): Promise<Map<string, tf.Tensor>> {
  const raw = await readSafetensors(path);
  return new Map(
    [...raw].map(([k, v]) => [k, tf.tensor(v.data as Float32Array, v.shape, 'float32')]),
  );
}

/**
 * Restores a checkpoint written by `saveTrainCheckpoint` into a model of the same configuration and a trainer
 * over the same parameters (attach LoRA adapters with the same options first when the checkpoint has them).
 */
export async function loadTrainCheckpoint(
  dir: string,
  trainer: Trainer,
  lora?: LoraAdapters,
): Promise<TrainCheckpointInfo> {
  const infoPath = join(dir, 'trainer.json');
  if (!existsSync(infoPath)) throw new Error(`${dir}: no trainer.json (not a training checkpoint)`);
  const info = JSON.parse(await fsp.readFile(infoPath, 'utf8')) as TrainCheckpointInfo;
  if (info.format !== 'siglip2-tfjs-train-checkpoint') {
    throw new Error(
      `${infoPath}: format ${JSON.stringify(info.format)} is not a siglip2-tfjs training checkpoint`,
    );
  }
  const mine = trainer.params.map((p) => `${p.tower}:${p.name}`);
  if (mine.join('\n') !== info.params.join('\n')) {
    throw new Error(
      `${infoPath}: the checkpoint trained ${info.params.length} parameters, this trainer ${mine.length}; ` +
        'build the trainer with the same freezing / LoRA options',
    );
  }
  const model: SiglipModel = trainer.model;
  for (const tower of info.towers) {
    const m = model.parts[tower as 'vision' | 'text' | 'scores'];
    if (!m) throw new Error(`${dir}: the checkpoint has a ${tower} tower, the model has none`);
    const weights = await readFolderWeights(join(dir, tower));
    try {
      m.loadWeights(weights, true);
    } finally {
      tf.dispose(Object.values(weights));
    }
  }
  if (info.lora) {
    if (!lora)
      throw new Error(`${dir}: the checkpoint has LoRA adapters; attach adapters before loading`);
    const w = await readTensors(join(dir, 'lora.safetensors'));
    try {
      lora.setWeights(w);
    } finally {
      tf.dispose([...w.values()]);
    }
  }
  const tensors = await readTensors(join(dir, 'optimizer.safetensors'));
  trainer.optimizer.setState({ step: info.step, tensors });
  tf.dispose([...tensors.values()]);
  return info;
}
