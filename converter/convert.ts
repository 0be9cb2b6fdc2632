// `siglip2 convert`: a Hugging Face checkpoint folder -> TF.js LayersModel artifacts, one per tower.
import * as tf from '@tensorflow/tfjs';
import { createHash } from 'node:crypto';
import { existsSync, promises as fsp, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import '../src/layers/index.js';
import {
  type ArtifactTower,
  type FileDigest,
  MANIFEST_FILE,
  MANIFEST_FORMAT,
  MANIFEST_FORMAT_VERSION,
  type SiglipArtifactsManifest,
  type StorageDtype,
  STORAGE_DTYPES,
  type TowerArtifactInfo,
  type TowerMetadata,
} from '../src/loader/manifest.js';
import { CheckpointReader, checkCheckpointTensors } from '../src/model/checkpoint.js';
import type { SiglipConfig } from '../src/model/config.js';
import { readConfig } from '../src/model/load_hf.js';
import { buildScoresModel } from '../src/model/scores_model.js';
import type { TowerChoice } from '../src/model/siglip_model.js';
import { SiglipTextModel } from '../src/model/text_model.js';
import { SiglipVisionModel } from '../src/model/vision_model.js';
import { checkpointWeights, type WeightEntry } from '../src/model/weight_map.js';
import { toTfLayout } from './layout.js';
import {
  encodeWeight,
  encodeFloat16,
  isQuantized,
  type ManifestQuantization,
  quantizeUint8With,
  storedBytes,
  uint8Params,
  valueRange,
} from './quantize.js';
import { ShardWriter } from './shards.js';

/** TF.js's default shard size (the tfjs converter's `weight_shard_size_bytes`). */
export const DEFAULT_SHARD_BYTES = 4 * 1024 * 1024;

/** Tensors larger than this many elements (and needing no transpose) are streamed in pieces of this size. */
const CHUNK_ELEMENTS = 8 * 1024 * 1024;

/** Files copied beside the manifest when the checkpoint folder has them. */
export const PROCESSOR_FILES = [
  'config.json',
  'preprocessor_config.json',
  'processor_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'added_tokens.json',
  'tokenizer.model',
  'spiece.model',
];

export function converterVersion(): string {
  try {
    const here = dirname(fileURLToPath(import.meta.url));
    for (const up of ['../..', '..']) {
      const p = join(here, up, 'package.json');
      if (existsSync(p)) {
        const pkg = JSON.parse(readFileSync(p, 'utf8')) as { name?: string; version?: string };
        if (pkg.name === 'siglip2-tfjs' && pkg.version) return pkg.version;
      }
    }
  } catch {
    // fall through
  }
  return 'unknown';
}

export interface ConvertProgress {
  tower: ArtifactTower;
  /** Checkpoint tensor just written. */
  tensor: string;
  tensorsDone: number;
  tensorsTotal: number;
  /** float32 bytes of checkpoint tensors converted so far, and in all. */
  bytesDone: number;
  bytesTotal: number;
}

export interface ConvertOptions {
  /** Weight storage (default float32). float16/uint8 use TF.js's manifest quantization. */
  dtype?: StorageDtype;
  /** Maximum bytes per shard file (default 4 MiB, as the TF.js converter). */
  shardBytes?: number;
  /** Which towers to write (default both, plus the scoring head). */
  towers?: TowerChoice;
  /** Recorded in the manifest. */
  source?: { repo?: string; revision?: string };
  /** Replace an existing conversion in `outDir` (otherwise a non-empty `outDir` is refused). */
  overwrite?: boolean;
  onProgress?: (p: ConvertProgress) => void;
  /** Tensors above this many elements that need no transpose are streamed in pieces of this size (default 8 Mi). */
  chunkElements?: number;
}

export interface ConvertResult {
  outDir: string;
  manifest: SiglipArtifactsManifest;
  seconds: number;
}

interface TowerPlan {
  tower: ArtifactTower;
  entries: WeightEntry[];
  topology: tf.serialization.ConfigDict;
}

/** Builds a tower with zero weights only to read its topology and weight list, then frees it. */
function planTower(config: SiglipConfig, tower: ArtifactTower, all: WeightEntry[]): TowerPlan {
  let model: tf.LayersModel;
  if (tower === 'vision') {
    model = SiglipVisionModel.build(config.visionConfig!, { weightInit: 'zeros' }).model;
  } else if (tower === 'text') {
    model = SiglipTextModel.build(config.textConfig!, { weightInit: 'zeros' }).model;
  } else {
    model = buildScoresModel(config.visionConfig!.hiddenSize, config.textConfig!.projectionSize);
  }
  try {
    const topology = model.toJSON(null, false) as tf.serialization.ConfigDict;
    const entries = all.filter((e) => e.tower === tower);
    const byName = new Map(entries.map((e) => [e.tfName, e]));
    for (const w of model.weights) {
      const e = byName.get(w.originalName);
      if (!e || e.tfShape.join(',') !== w.shape.join(',')) {
        throw new Error(
          `internal: the ${tower} tower's weight ${w.originalName} [${w.shape.join(', ')}] has no checkpoint tensor in the weight map`,
        );
      }
    }
    if (model.weights.length !== entries.length) {
      throw new Error(
        `internal: the ${tower} tower has ${model.weights.length} weights, the weight map ${entries.length}`,
      );
    }
    return { tower, entries, topology };
  } finally {
    model.dispose();
  }
}

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Streams one checkpoint tensor into the shards; returns its manifest quantization field. */
async function writeTensor(
  reader: CheckpointReader,
  e: WeightEntry,
  dtype: StorageDtype,
  shards: ShardWriter,
  chunk: number,
): Promise<ManifestQuantization | undefined> {
  const n = numel(e.hfShape);
  if (e.transform !== 'none' || n <= chunk) {
    const raw = (await reader.read(e.hfName)).data as Float32Array;
    const { bytes, quantization } = encodeWeight(
      dtype,
      toTfLayout(raw, e.hfShape, e.transform),
      e.tfShape,
    );
    await shards.write(bytes);
    return quantization;
  }
  // Large tensor in its final layout (the token embedding table): stream it in pieces.
  const pieces = (fn: (values: Float32Array) => Promise<void>) =>
    (async () => {
      for (let first = 0; first < n; first += chunk) {
        const count = Math.min(chunk, n - first);
        await fn((await reader.readElements(e.hfName, first, count)) as Float32Array);
      }
    })();
  if (!isQuantized(dtype, e.tfShape)) {
    await pieces((v) => shards.write(new Uint8Array(v.buffer, v.byteOffset, v.byteLength)));
    return undefined;
  }
  if (dtype === 'float16') {
    await pieces((v) => shards.write(encodeFloat16(v)));
    return { dtype: 'float16', original_dtype: 'float32' };
  }
  let range = { lo: Infinity, hi: -Infinity };
  await pieces(async (v) => {
    range = valueRange(v, range);
  });
  const { min, scale } = uint8Params(range.lo, range.hi);
  await pieces((v) => shards.write(quantizeUint8With(v, min, scale)));
  return { dtype: 'uint8', min, scale, original_dtype: 'float32' };
}

/** Refuses an output folder that is a file, or holds something other than a previous conversion. */
async function checkOutDir(outDir: string, overwrite: boolean): Promise<void> {
  if (!existsSync(outDir)) return;
  const stat = await fsp.stat(outDir);
  if (!stat.isDirectory()) throw new Error(`${outDir}: exists and is not a folder`);
  const entries = await fsp.readdir(outDir);
  if (!entries.length) return;
  if (!overwrite) {
    throw new Error(
      `${outDir}: folder is not empty (pass --overwrite to replace a previous conversion)`,
    );
  }
  if (!entries.includes(MANIFEST_FILE)) {
    throw new Error(
      `${outDir}: folder is not empty and holds no ${MANIFEST_FILE}; refusing to overwrite it`,
    );
  }
}

const PARTIAL = '.partial-';

/** The temporary sibling a conversion into `outDir` writes to: `<outDir>.partial-<pid>-<stamp>`. */
function partialDir(outDir: string): string {
  return `${outDir}${PARTIAL}${process.pid}-${Date.now().toString(36)}`;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes `<outDir>.partial-<pid>-*` folders left by conversions whose process is gone (killed midway). */
export async function removeStalePartials(outDir: string): Promise<string[]> {
  const parent = dirname(outDir);
  const prefix = basename(outDir) + PARTIAL;
  const names = await fsp.readdir(parent).catch(() => [] as string[]);
  const removed: string[] = [];
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length).split('-')[0]);
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || processAlive(pid)) continue;
    await fsp.rm(join(parent, name), { recursive: true, force: true });
    removed.push(join(parent, name));
  }
  return removed;
}

/**
 * Moves the finished conversion `tmp` to `outDir` in one rename, so `outDir` is either absent, the previous
 * conversion, or the complete new one. With `overwrite` a previous conversion is moved aside, then removed.
 */
async function publish(tmp: string, outDir: string, overwrite: boolean): Promise<void> {
  if (existsSync(outDir)) {
    const entries = await fsp.readdir(outDir);
    if (!entries.length) await fsp.rmdir(outDir);
    else if (overwrite && entries.includes(MANIFEST_FILE)) {
      const old = `${outDir}.old-${process.pid}-${Date.now().toString(36)}`;
      await fsp.rename(outDir, old);
      await fsp.rename(tmp, outDir);
      await fsp.rm(old, { recursive: true, force: true });
      return;
    } else {
      throw new Error(`${outDir}: another conversion filled this folder meanwhile; kept it`);
    }
  }
  await fsp.rename(tmp, outDir);
}

/** Writes a file and returns its size and SHA-256. */
async function writeDigested(path: string, bytes: Uint8Array): Promise<FileDigest> {
  await fsp.writeFile(path, bytes);
  return { size: bytes.byteLength, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/**
 * Converts a Hugging Face SigLIP / SigLIP 2 checkpoint folder (`config.json` + `model.safetensors` or a sharded
 * `model.safetensors.index.json`) into TF.js LayersModel artifacts:
 *
 * ```
 * out/siglip.json                       manifest (source, dtype, converter version, config, towers)
 * out/vision/model.json + group1-shard*  vision tower
 * out/text/model.json + group1-shard*    text tower
 * out/scores/model.json + shard          scoring head (logit_scale, logit_bias)
 * out/config.json, preprocessor_config.json, tokenizer files (copied)
 * ```
 *
 * Tensors are streamed one at a time (the largest in pieces), transformed on plain arrays and written straight
 * into the shards, so memory stays far below the checkpoint size. `siglip.json` records the size and SHA-256 of
 * every file written (checked by `loadSiglip`). Everything is written into a temporary sibling folder
 * (`<outDir>.partial-<pid>-…`) renamed to `outDir` at the end, so a conversion killed midway never leaves a folder
 * that looks complete; a later run removes such leftovers.
 */
export async function convertCheckpoint(
  srcDir: string,
  outDir: string,
  opts: ConvertOptions = {},
): Promise<ConvertResult> {
  const started = Date.now();
  const dtype = opts.dtype ?? 'float32';
  if (!STORAGE_DTYPES.includes(dtype)) {
    throw new Error(`dtype ${JSON.stringify(dtype)}: expected one of ${STORAGE_DTYPES.join(', ')}`);
  }
  const shardBytes = opts.shardBytes ?? DEFAULT_SHARD_BYTES;
  if (!(Number.isInteger(shardBytes) && shardBytes >= 1024)) {
    throw new Error(`shard size ${shardBytes}: must be a whole number of bytes, at least 1024`);
  }
  if (resolve(srcDir) === resolve(outDir)) {
    throw new Error(`${outDir}: the output folder must differ from the checkpoint folder`);
  }
  const config = await readConfig(srcDir);
  const configJson = JSON.parse(await fsp.readFile(join(srcDir, 'config.json'), 'utf8')) as unknown;
  const choice = opts.towers ?? 'both';
  const towers: ArtifactTower[] = [];
  if (config.visionConfig && choice !== 'text') towers.push('vision');
  if (config.textConfig && choice !== 'vision') towers.push('text');
  if (towers.length === 2 && config.visionConfig?.visionUseHead) towers.push('scores');
  if (!towers.length) throw new Error(`${srcDir}: the configuration has no ${choice} tower`);

  const all = checkpointWeights(config);
  const reader = await CheckpointReader.open(srcDir);
  try {
    const wanted = all.filter((e) => towers.includes(e.tower));
    checkCheckpointTensors(reader, wanted);
    await checkOutDir(outDir, opts.overwrite ?? false);
    await fsp.mkdir(dirname(resolve(outDir)), { recursive: true });
    await removeStalePartials(resolve(outDir));
    const tmp = partialDir(resolve(outDir));
    await fsp.mkdir(tmp);
    const digests: Record<string, FileDigest> = {};
    try {
      const bytesTotal = wanted.reduce((s, e) => s + 4 * numel(e.hfShape), 0);
      let bytesDone = 0;
      let tensorsDone = 0;
      const towerInfo: Partial<Record<ArtifactTower, TowerArtifactInfo>> = {};
      for (const tower of towers) {
        const plan = planTower(config, tower, all);
        const dir = join(tmp, tower);
        await fsp.mkdir(dir, { recursive: true });
        const total = plan.entries.reduce((s, e) => s + storedBytes(dtype, e.tfShape), 0);
        const shards = new ShardWriter(dir, total, shardBytes);
        const weights: tf.io.WeightsManifestEntry[] = [];
        for (const e of plan.entries) {
          const quantization = await writeTensor(
            reader,
            e,
            dtype,
            shards,
            opts.chunkElements ?? CHUNK_ELEMENTS,
          );
          const spec: tf.io.WeightsManifestEntry = {
            name: e.tfName,
            shape: e.tfShape,
            dtype: 'float32',
          };
          if (quantization) spec.quantization = quantization;
          weights.push(spec);
          bytesDone += 4 * numel(e.hfShape);
          tensorsDone++;
          opts.onProgress?.({
            tower,
            tensor: e.hfName,
            tensorsDone,
            tensorsTotal: wanted.length,
            bytesDone,
            bytesTotal,
          });
        }
        await shards.close();
        const metadata: TowerMetadata = { siglip2: { tower, dtype, config: configJson } };
        const modelJson = {
          format: 'layers-model',
          generatedBy: `TensorFlow.js tfjs-layers v${tf.version_layers}`,
          convertedBy: `siglip2-tfjs converter v${converterVersion()}`,
          modelTopology: plan.topology,
          weightsManifest: [{ paths: shards.paths, weights }],
          userDefinedMetadata: metadata,
        };
        digests[`${tower}/model.json`] = await writeDigested(
          join(dir, 'model.json'),
          new TextEncoder().encode(JSON.stringify(modelJson)),
        );
        for (const [name, d] of shards.digests) digests[`${tower}/${name}`] = d;
        towerInfo[tower] = {
          modelJson: `${tower}/model.json`,
          weightBytes: total,
          shards: shards.paths.length,
          parameters: plan.entries.reduce((s, e) => s + numel(e.tfShape), 0),
        };
      }

      const files: string[] = [];
      for (const f of PROCESSOR_FILES) {
        if (existsSync(join(srcDir, f))) {
          digests[f] = await writeDigested(join(tmp, f), await fsp.readFile(join(srcDir, f)));
          files.push(f);
        }
      }
      const manifest: SiglipArtifactsManifest = {
        format: MANIFEST_FORMAT,
        formatVersion: MANIFEST_FORMAT_VERSION,
        converter: { name: 'siglip2-tfjs', version: converterVersion() },
        source: { ...opts.source, path: resolve(srcDir) },
        dtype,
        shardBytes,
        towers: towerInfo,
        config: configJson,
        files,
        digests,
        createdAt: new Date().toISOString(),
      };
      await fsp.writeFile(join(tmp, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n');
      await publish(tmp, resolve(outDir), opts.overwrite ?? false);
      return { outDir, manifest, seconds: (Date.now() - started) / 1000 };
    } catch (e) {
      await fsp.rm(tmp, { recursive: true, force: true });
      throw e;
    }
  } finally {
    await reader.close();
  }
}
