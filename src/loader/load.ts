// loadSiglip: converted artifacts -> SiglipModel with the processor configuration attached. Browser-safe.
import * as tf from '@tensorflow/tfjs';
import {
  type BackendName,
  type BackendReport,
  type UseBackendOptions,
  useBackend,
} from '../backends/index.js';
import { parseConfig, type SiglipConfig } from '../model/config.js';
import { SiglipModel, type TowerChoice } from '../model/siglip_model.js';
import { SiglipTextModel } from '../model/text_model.js';
import { SiglipVisionModel } from '../model/vision_model.js';
import { checkpointWeights } from '../model/weight_map.js';
import { ArtifactFormatError, IntegrityError } from '../util/errors.js';
import { verifiedSource } from './digest.js';
import {
  type ArtifactTower,
  MANIFEST_FILE,
  parseManifest,
  type SiglipArtifactsManifest,
  type TowerMetadata,
} from './manifest.js';
import { type ArtifactSource, type HttpSourceOptions, readJson, sourceFor } from './source.js';
import { loadTowerModel } from './tower.js';
import type { WeightStorage } from './mapped_group.js';
import { keepsWrittenArrays } from '../internals/cpu_backend.js';

export interface LoadSiglipProgress {
  /** Weight bytes loaded so far and in all (of the towers asked for). */
  loadedBytes: number;
  totalBytes: number;
  /** loadedBytes / totalBytes. */
  fraction: number;
  tower: ArtifactTower;
}

export interface LoadSiglipOptions extends HttpSourceOptions {
  /** `both` (default: vision, text and the scoring head), `vision` or `text`: only that tower is downloaded. */
  towers?: TowerChoice;
  onProgress?: (p: LoadSiglipProgress) => void;
  /** Shard files fetched ahead (default 4). */
  concurrency?: number;
  /**
   * Makes this TF.js backend active before the model is built (`auto`: the fastest available; see useBackend).
   * Default: the backend active now. The choice and why is in `model.backendReport`.
   */
  backend?: BackendName | 'auto';
  /** Options for useBackend (wasm threads, browser wasmPaths). */
  backendOptions?: UseBackendOptions;
  /**
   * Check every file read (model.json, shards, processor configs) against the size and SHA-256 recorded in
   * siglip.json, as it arrives (default true). A mismatch throws an IntegrityError naming the file and both
   * digests. `false` skips the check (e.g. for artifacts edited by hand).
   */
  verify?: boolean;
  /** Non-fatal problems, e.g. a siglip.json without digests (default: console.warn). */
  onWarning?: (message: string) => void;
  /**
   * Memory-map float32 weights from local files instead of reading them (Node with the native addon built, on the
   * cpu or native backend): each weight's values are then a private view of its bytes in the shard files, so loading
   * copies nothing and pages are read only when used (untouched token-table rows never take memory). Default: on
   * where available; `false` reads every file; `true` fails when mapping is not available, saying why.
   */
  mmap?: boolean;
}

/** How the files of a loaded model were checked: `verified` (SHA-256 of each file read), `skipped` (verify:
 * false), `no-digests` (siglip.json written before digests were recorded), `none` (IndexedDB). */
export type Verification = 'verified' | 'skipped' | 'no-digests' | 'none';

/** What a text/image processor needs, from the files the converter copied beside the model. */
export interface ProcessorInfo {
  /** Parsed `preprocessor_config.json` (image size, resample, mean/std…), when the model has one. */
  preprocessorConfig?: Record<string, unknown>;
  /** Parsed `tokenizer_config.json`, when present. */
  tokenizerConfig?: Record<string, unknown>;
  /** Every copied file (tokenizer.json, tokenizer.model…) by name, as a URL or path to fetch on demand. */
  files: Record<string, string>;
}

/** A SiglipModel loaded from converted artifacts, with its manifest and processor configuration. */
export class LoadedSiglipModel extends SiglipModel {
  constructor(
    config: SiglipConfig,
    vision: SiglipVisionModel | undefined,
    text: SiglipTextModel | undefined,
    scores: tf.LayersModel | undefined,
    readonly processor: ProcessorInfo,
    /** `siglip.json` (absent when loaded from IndexedDB). */
    readonly manifest?: SiglipArtifactsManifest,
  ) {
    super(config, vision, text, scores);
  }

  /** The backend chosen by the `backend` option of loadSiglip (and why); undefined without that option. */
  backendReport?: BackendReport;

  /** Whether the files were checked against the digests of siglip.json. */
  verification: Verification = 'none';

  /** Weight bytes held as views of memory-mapped files and bytes read into memory (see the `mmap` option). */
  weightStorage: WeightStorage = { mappedBytes: 0, copiedBytes: 0 };
}

function wantedTowers(
  choice: TowerChoice,
  available: Partial<Record<ArtifactTower, unknown>>,
): ArtifactTower[] {
  const out: ArtifactTower[] = [];
  if (choice !== 'text' && available.vision) out.push('vision');
  if (choice !== 'vision' && available.text) out.push('text');
  if (choice === 'both' && available.scores && out.length === 2) out.push('scores');
  return out;
}

function wrap(
  config: SiglipConfig,
  models: Partial<Record<ArtifactTower, tf.LayersModel>>,
  processor: ProcessorInfo,
  manifest?: SiglipArtifactsManifest,
): LoadedSiglipModel {
  const vision =
    models.vision && config.visionConfig
      ? new SiglipVisionModel(config.visionConfig, models.vision)
      : undefined;
  const text =
    models.text && config.textConfig
      ? new SiglipTextModel(config.textConfig, models.text)
      : undefined;
  return new LoadedSiglipModel(config, vision, text, models.scores, processor, manifest);
}

/**
 * Loads a model written by `siglip2 convert`.
 *
 * `location`: the folder (or its `siglip.json`) as an `http(s)://` URL (browser and Node), a `file://` URL or a
 * plain path (Node), or `indexeddb://<name>` (browser: towers saved with
 * `model.vision.model.save('indexeddb://<name>/vision')` etc.). Only the requested towers are fetched, shard by
 * shard, so no buffer holds a whole tower's weights.
 */
export async function loadSiglip(
  location: string,
  opts: LoadSiglipOptions = {},
): Promise<LoadedSiglipModel> {
  let report: BackendReport | undefined;
  if (opts.backend !== undefined) report = await useBackend(opts.backend, opts.backendOptions);
  const model = location.startsWith('indexeddb://')
    ? await loadFromIndexedDb(location, opts)
    : await loadFromSource(location, opts);
  model.backendReport = report;
  return model;
}

async function loadFromSource(
  location: string,
  opts: LoadSiglipOptions,
): Promise<LoadedSiglipModel> {
  const plain = sourceFor(location, opts);
  const manifestAt = plain.locate(MANIFEST_FILE);
  const manifest = parseManifest(await readJson(plain, MANIFEST_FILE), manifestAt);
  const config = parseConfig(manifest.config, manifestAt);
  const towers = wantedTowers(opts.towers ?? 'both', manifest.towers);
  if (!towers.length) {
    throw new ArtifactFormatError(
      `${manifestAt}: the converted model has no ${opts.towers ?? 'both'} tower`,
      manifestAt,
      'towers',
    );
  }
  let verification: Verification = 'skipped';
  let source: ArtifactSource = plain;
  let read: Set<string> | undefined;
  if (opts.verify !== false) {
    if (manifest.digests) {
      const checked = verifiedSource(plain, manifest.digests, manifestAt);
      source = checked;
      read = checked.read;
      verification = 'verified';
    } else {
      verification = 'no-digests';
      (opts.onWarning ?? ((m: string) => console.warn(m)))(
        `${manifestAt}: records no SHA-256 digests (converted by an older siglip2-tfjs); loading without ` +
          'verifying the files. Convert again to get verified loading.',
      );
    }
  }
  const mapWeights = shouldMap(opts.mmap, plain);
  const storage: WeightStorage = { mappedBytes: 0, copiedBytes: 0 };
  const weights = checkpointWeights(config);
  const totalBytes = towers.reduce((s, t) => s + (manifest.towers[t]?.weightBytes ?? 0), 0);
  let before = 0;
  const models: Partial<Record<ArtifactTower, tf.LayersModel>> = {};
  try {
    for (const tower of towers) {
      const info = manifest.towers[tower]!;
      const expectedWeights = new Map(
        weights.filter((w) => w.tower === tower).map((w) => [w.tfName, w.tfShape]),
      );
      const { model } = await loadTowerModel(source, info.modelJson, {
        shardBytes: manifest.shardBytes,
        concurrency: opts.concurrency,
        expectedWeights,
        expectedBytes: info.weightBytes,
        mapWeights,
        storage,
        onBytes: (loaded) =>
          opts.onProgress?.({
            loadedBytes: before + loaded,
            totalBytes,
            fraction: totalBytes ? (before + loaded) / totalBytes : 1,
            tower,
          }),
      });
      models[tower] = model;
      before += info.weightBytes;
      if (read) checkAllRead(manifest, info.modelJson, read, manifestAt, plain);
    }
    const processor = await processorInfo(source, manifest);
    const loaded = wrap(config, models, processor, manifest);
    loaded.verification = verification;
    loaded.weightStorage = storage;
    return loaded;
  } catch (e) {
    for (const m of Object.values(models)) m.dispose();
    throw e;
  }
}

/** Whether to map weights (the `mmap` option); throws when `true` is asked for and mapping is unavailable. */
function shouldMap(mmap: boolean | undefined, source: ArtifactSource): boolean {
  if (mmap === false) return false;
  let why: string | undefined;
  if (!source.files) why = 'weights are not read from local files';
  else if (!keepsWrittenArrays(tf.backend())) {
    why = `the ${tf.getBackend()} backend copies weights into its own memory (mapping helps on cpu and native)`;
  } else why = source.files.unavailable();
  if (why === undefined) return true;
  if (mmap === true)
    throw new Error(`loadSiglip: mmap: true, but weights cannot be mapped: ${why}`);
  return false;
}

/** Every file siglip.json lists in a tower's folder must have been read: one that was not is missing from model.json. */
function checkAllRead(
  manifest: SiglipArtifactsManifest,
  modelJson: string,
  read: ReadonlySet<string>,
  manifestAt: string,
  source: ArtifactSource,
): void {
  const dir = modelJson.includes('/') ? modelJson.slice(0, modelJson.lastIndexOf('/') + 1) : '';
  if (!dir) return;
  const unread = Object.keys(manifest.digests ?? {}).filter(
    (p) => p.startsWith(dir) && !read.has(p),
  );
  if (unread.length) {
    throw new IntegrityError(
      `${source.locate(modelJson)}: does not reference ${unread.join(', ')}, which ${manifestAt} records ` +
        '(model.json edited, or files of another conversion mixed in)',
      source.locate(unread[0]),
      manifest.digests![unread[0]],
      {},
    );
  }
}

async function processorInfo(
  source: ArtifactSource,
  manifest: SiglipArtifactsManifest,
): Promise<ProcessorInfo> {
  const files: Record<string, string> = {};
  for (const f of manifest.files) files[f] = source.locate(f);
  const info: ProcessorInfo = { files };
  if (manifest.files.includes('preprocessor_config.json')) {
    info.preprocessorConfig = (await readJson(source, 'preprocessor_config.json')) as Record<
      string,
      unknown
    >;
  }
  if (manifest.files.includes('tokenizer_config.json')) {
    info.tokenizerConfig = (await readJson(source, 'tokenizer_config.json')) as Record<
      string,
      unknown
    >;
  }
  return info;
}

async function loadFromIndexedDb(
  location: string,
  opts: LoadSiglipOptions,
): Promise<LoadedSiglipModel> {
  const base = location.replace(/\/+$/, '');
  const choice = opts.towers ?? 'both';
  const names: ArtifactTower[] =
    choice === 'both' ? ['vision', 'text', 'scores'] : [choice as ArtifactTower];
  const models: Partial<Record<ArtifactTower, tf.LayersModel>> = {};
  let config: SiglipConfig | undefined;
  try {
    const stored = await tf.io.listModels();
    for (const tower of names) {
      const url = `${base}/${tower}`;
      if (!(url in stored)) {
        if (tower === 'scores') continue;
        throw new Error(`${url}: no such model in IndexedDB`);
      }
      const model = await tf.loadLayersModel(url);
      models[tower] = model;
      const meta = model.getUserDefinedMetadata() as TowerMetadata | undefined;
      if (!meta?.siglip2?.config) {
        throw new Error(`${url}: the stored model has no siglip2 metadata (config)`);
      }
      config ??= parseConfig(meta.siglip2.config, url);
    }
    return wrap(config!, models, { files: {} });
  } catch (e) {
    for (const m of Object.values(models)) m.dispose();
    throw e;
  }
}
