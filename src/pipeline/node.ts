/**
 * Node-only model resolution for the pipeline: local folders (converted or raw Hugging Face checkpoints), http(s)
 * URLs of converted models, and hub repo ids, which are downloaded with `snapshotDownload` and converted once into
 * the siglip2 cache.
 */
import { existsSync, promises as fsp } from 'node:fs';
import { homedir } from 'node:os';
import { basename, join } from 'node:path';
import { convertCheckpoint } from '../../converter/convert.js';
import { snapshotDownload } from '../hub/download.js';
import { resolveModelSource } from '../hub/resolve.js';
import '../loader/node.js';
import { MANIFEST_FILE, type StorageDtype } from '../loader/manifest.js';
import { loadHfCheckpoint, readConfig } from '../model/load_hf.js';
import type { TowerChoice } from '../model/siglip_model.js';
import { loadPreprocessorConfig } from '../processors/config.js';
import { createImageProcessor } from '../processors/image.js';
import { SiglipTokenizer } from '../processors/tokenizer.js';
import { type PipelineOptions, SiglipPipeline } from './pipeline.js';

/** The model used when none is named (and `$SIGLIP2_MODEL` is unset). */
export const DEFAULT_MODEL = 'google/siglip2-base-patch16-224';

export interface PipelineLoadProgress {
  stage: 'download' | 'convert' | 'load';
  done: number;
  total: number;
  unit: 'bytes' | 'tensors';
}

export interface LoadPipelineOptions extends PipelineOptions {
  /** Towers to load (default both; `vision` / `text` for image-only / text-only work). */
  towers?: TowerChoice;
  /** Weight storage of the conversion written into the cache (default float32). */
  dtype?: StorageDtype;
  /** siglip2 conversion cache (default `$SIGLIP2_CACHE`, else `$XDG_CACHE_HOME/siglip2`, else ~/.cache/siglip2). */
  cacheDir?: string;
  /** Hub revision (branch, tag or commit) for repo ids; `org/name@rev` in the spec wins. */
  revision?: string;
  /** Hub endpoint (default `$HF_ENDPOINT`, else https://huggingface.co). */
  endpoint?: string;
  /** Hugging Face hub cache (default: the standard one, `$HF_HUB_CACHE` / `$HF_HOME/hub`). */
  hubCacheDir?: string;
  onProgress?: (p: PipelineLoadProgress) => void;
  /** Where the model came from is reported here (e.g. "converted into the cache"). */
  onInfo?: (message: string) => void;
  /** Check a converted model's files against the SHA-256 digests of its siglip.json (default true). */
  verify?: boolean;
}

/** The hub could not provide the model; the message says how to use a local checkpoint instead. */
export class ModelUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ModelUnavailableError';
  }
}

/** How to run without the hub (appended to ModelUnavailableError messages). */
export function offlineHelp(command = 'siglip2 classify photo.jpg --labels cat,dog'): string {
  return [
    'To use a checkpoint on this machine instead:',
    `  ${command} --model /path/to/folder`,
    '      the folder is a Hugging Face checkpoint (config.json, model.safetensors, tokenizer.json,',
    '      preprocessor_config.json: e.g. a copy of google/siglip2-base-patch16-224) or the output of siglip2 convert;',
    '  siglip2 convert /path/to/hf-checkpoint /path/to/converted   (convert once, then --model /path/to/converted);',
    '  SIGLIP2_MODEL=/path/to/folder   sets the model for every command without --model;',
    '  HF_ENDPOINT=https://your-hub-mirror   downloads from a hub mirror instead of https://huggingface.co.',
    `Models fetched before are used from the cache (${siglip2CacheDir()}) without the network.`,
  ].join('\n');
}

/** The siglip2 conversion cache folder. */
export function siglip2CacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SIGLIP2_CACHE) return env.SIGLIP2_CACHE;
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'siglip2');
}

/** `<cache>/<org>--<name>--<commit>--<dtype>`: one conversion of one hub commit. */
export function convertedCacheFolder(
  cacheDir: string,
  repoId: string,
  commit: string,
  dtype: StorageDtype,
): string {
  return join(cacheDir, `${repoId.replace('/', '--')}--${commit}--${dtype}`);
}

function refFile(cacheDir: string, repoId: string, revision: string): string {
  return join(cacheDir, 'refs', repoId.replace('/', '--'), encodeURIComponent(revision));
}

/** What a model spec resolved to. */
export interface ResolvedPipelineModel {
  /** `converted`: siglip.json artifacts (folder or URL); `checkpoint`: a raw Hugging Face folder. */
  kind: 'converted' | 'checkpoint';
  location: string;
  repoId?: string;
  commit?: string;
  /** True when a hub model was found already converted in the cache. */
  cached?: boolean;
}

/**
 * Turns a model spec into something loadable. `spec`: a converted folder (siglip.json), a Hugging Face checkpoint
 * folder (config.json + safetensors), an http(s) URL of a converted model, or a hub repo id `org/name[@rev]`
 * (downloaded and converted into the cache on first use). Default: `$SIGLIP2_MODEL`, else {@link DEFAULT_MODEL}.
 */
export async function resolvePipelineModel(
  spec?: string,
  opts: LoadPipelineOptions = {},
): Promise<ResolvedPipelineModel> {
  const given = spec ?? (process.env.SIGLIP2_MODEL || DEFAULT_MODEL);
  const source = await resolveModelSource(given);
  if (source.kind === 'url') return { kind: 'converted', location: source.url! };
  if (source.kind === 'folder') {
    const dir = source.path!;
    if (existsSync(join(dir, MANIFEST_FILE))) return { kind: 'converted', location: dir };
    if (existsSync(join(dir, 'config.json'))) return { kind: 'checkpoint', location: dir };
    throw new Error(
      `${dir}: neither a converted model (no ${MANIFEST_FILE}) nor a Hugging Face checkpoint (no config.json)`,
    );
  }
  const repoId = source.repoId!;
  const revision = source.revision ?? opts.revision ?? 'main';
  const dtype = opts.dtype ?? 'float32';
  const cacheDir = opts.cacheDir ?? siglip2CacheDir();
  const converted = (commit: string) => convertedCacheFolder(cacheDir, repoId, commit, dtype);
  const done = (commit: string) => existsSync(join(converted(commit), MANIFEST_FILE));

  // Already converted: no network at all.
  let known: string | undefined = /^[0-9a-f]{40}$/.test(revision) ? revision : undefined;
  if (!known) {
    known = await fsp.readFile(refFile(cacheDir, repoId, revision), 'utf8').then(
      (s) => s.trim(),
      () => undefined,
    );
  }
  if (known && done(known)) {
    return { kind: 'converted', location: converted(known), repoId, commit: known, cached: true };
  }

  const files = new Map<string, { loaded: number; total: number }>();
  let snapshot: string;
  try {
    snapshot = await snapshotDownload(repoId, {
      revision,
      endpoint: opts.endpoint,
      cacheDir: opts.hubCacheDir,
      onProgress: (p) => {
        files.set(p.file, { loaded: p.loaded, total: p.total });
        let loaded = 0;
        let total = 0;
        for (const f of files.values()) {
          loaded += f.loaded;
          total += f.total;
        }
        opts.onProgress?.({ stage: 'download', done: loaded, total, unit: 'bytes' });
      },
    });
  } catch (e) {
    throw new ModelUnavailableError(
      `cannot get the model ${repoId} (revision ${revision}) from the Hugging Face hub: ${(e as Error).message}\n` +
        offlineHelp(),
      { cause: e },
    );
  }
  const commit = basename(snapshot);
  const out = converted(commit);
  if (!done(commit)) {
    opts.onInfo?.(`converting ${repoId}@${commit.slice(0, 12)} (${dtype}) into ${out}`);
    await fsp.mkdir(cacheDir, { recursive: true });
    try {
      // convertCheckpoint writes into a temporary sibling and renames it to `out` when complete, so a conversion
      // killed midway never leaves a folder that looks done.
      await convertCheckpoint(snapshot, out, {
        dtype,
        source: { repo: repoId, revision: commit },
        onProgress: (p) =>
          opts.onProgress?.({
            stage: 'convert',
            done: p.bytesDone,
            total: p.bytesTotal,
            unit: 'bytes',
          }),
      });
    } catch (e) {
      // Another process finished the same conversion first: keep theirs.
      if (!done(commit)) throw e;
    }
  }
  const ref = refFile(cacheDir, repoId, revision);
  await fsp.mkdir(join(ref, '..'), { recursive: true });
  await fsp.writeFile(ref, commit);
  return { kind: 'converted', location: out, repoId, commit, cached: false };
}

/** Loads a raw Hugging Face checkpoint folder straight into a pipeline (no conversion). */
export async function pipelineFromCheckpoint(
  dir: string,
  opts: LoadPipelineOptions = {},
): Promise<SiglipPipeline> {
  const config = await readConfig(dir);
  const model = await loadHfCheckpoint(dir, {
    towers: opts.towers,
    onProgress: (p) =>
      opts.onProgress?.({ stage: 'load', done: p.loaded, total: p.total, unit: 'tensors' }),
  });
  try {
    const preprocessorConfig =
      config.visionConfig && existsSync(join(dir, 'preprocessor_config.json'))
        ? await loadPreprocessorConfig(dir)
        : undefined;
    let tokenizer: SiglipTokenizer | undefined;
    let tokenizerMissing: string | undefined;
    if (model.text) {
      if (existsSync(join(dir, 'tokenizer.json'))) {
        tokenizer = await SiglipTokenizer.fromFolder(dir, {
          maxLength: model.text.config.maxPositionEmbeddings,
          lowercase: opts.lowercase ?? true,
        });
      } else {
        tokenizerMissing = await SiglipTokenizer.fromFolder(dir).then(
          () => undefined,
          (e: Error) => e.message,
        );
      }
    }
    return new SiglipPipeline(
      {
        model,
        imageProcessor: preprocessorConfig
          ? createImageProcessor(preprocessorConfig, { maxNumPatches: opts.maxNumPatches })
          : undefined,
        tokenizer,
        tokenizerMissing,
      },
      opts,
    );
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/**
 * The pipeline for a model spec (see {@link resolvePipelineModel}); with no spec, `$SIGLIP2_MODEL` or
 * google/siglip2-base-patch16-224, downloaded and converted into the cache on first use. When the hub cannot be
 * reached a {@link ModelUnavailableError} says how to point at a local checkpoint.
 */
export async function loadPipeline(
  spec?: string,
  opts: LoadPipelineOptions = {},
): Promise<SiglipPipeline> {
  const resolved = await resolvePipelineModel(spec, opts);
  if (resolved.kind === 'checkpoint') return pipelineFromCheckpoint(resolved.location, opts);
  if (resolved.cached) opts.onInfo?.(`using ${resolved.location}`);
  return SiglipPipeline.load(resolved.location, {
    ...opts,
    onProgress: (p) =>
      opts.onProgress?.({
        stage: 'load',
        done: p.loadedBytes,
        total: p.totalBytes,
        unit: 'bytes',
      }),
  });
}
