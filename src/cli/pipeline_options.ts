// Options shared by the commands that run the pipeline (classify, embed): model choice, batching, progress bars.
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { STORAGE_DTYPES, type StorageDtype } from '../loader/manifest.js';
import type { TowerChoice } from '../model/siglip_model.js';
import {
  DEFAULT_MODEL,
  loadPipeline,
  ModelUnavailableError,
  offlineHelp,
  type PipelineLoadProgress,
} from '../pipeline/node.js';
import type { SiglipPipeline } from '../pipeline/pipeline.js';
import { backendOptions, selectBackend } from './backend_option.js';

export interface PipelineCliOptions {
  model?: string;
  revision?: string;
  dtype: string;
  batchSize: string;
  maxNumPatches?: string;
  lowercase: boolean;
  /** false with --no-verify. */
  verify: boolean;
  backend?: string;
  threads?: number;
  json?: boolean;
}

/**
 * Adds --model, --revision, --dtype, --batch-size, --max-num-patches, --no-lowercase, --no-verify, --backend,
 * --threads.
 */
export function pipelineOptions(cmd: Command): Command {
  cmd
    .option(
      '--model <model>',
      `converted folder (siglip.json), Hugging Face checkpoint folder (config.json + safetensors), http(s) URL of ` +
        `a converted model, or hub repo id org/name[@revision] (default: $SIGLIP2_MODEL, else ${DEFAULT_MODEL})`,
    )
    .option('--revision <rev>', 'hub revision for a repo id (default main)')
    .option(
      '--dtype <dtype>',
      `weight storage of the conversion cached for hub models: ${STORAGE_DTYPES.join(', ')}`,
      'float32',
    )
    .option('--batch-size <n>', 'images or texts per forward pass', '8')
    .option('--max-num-patches <n>', 'NaFlex models: patch budget per image')
    .option('--no-lowercase', 'feed texts as given (SigLIP 2 expects lowercased text)')
    .option(
      '--no-verify',
      'load a converted model without checking its files against the SHA-256 digests in siglip.json',
    );
  return backendOptions(cmd);
}

function positiveInt(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} ${v}: expected a positive integer`);
  return n;
}

/** Validated numbers of the shared options. */
export function batchSizeOf(opts: PipelineCliOptions): number {
  return positiveInt(opts.batchSize, '--batch-size');
}

/** Selects the backend and loads the pipeline, with progress bars on a TTY (unless --json). */
export async function openPipeline(
  opts: PipelineCliOptions,
  towers: TowerChoice,
  example: string,
): Promise<SiglipPipeline> {
  const dtype = opts.dtype as StorageDtype;
  if (!STORAGE_DTYPES.includes(dtype)) {
    throw new Error(`--dtype ${opts.dtype}: expected one of ${STORAGE_DTYPES.join(', ')}`);
  }
  const batchSize = batchSizeOf(opts);
  const maxNumPatches =
    opts.maxNumPatches === undefined
      ? undefined
      : positiveInt(opts.maxNumPatches, '--max-num-patches');
  await selectBackend(opts, opts.json);
  const bars = !opts.json && process.stderr.isTTY === true;
  const multi = bars
    ? new cliProgress.MultiBar(
        {
          stream: process.stderr,
          format: '{stage} [{bar}] {percentage}% {detail}',
          hideCursor: true,
          clearOnComplete: false,
        },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  const stageBars = new Map<string, cliProgress.SingleBar>();
  const onProgress = (p: PipelineLoadProgress) => {
    if (!multi) return;
    const detail =
      p.unit === 'bytes'
        ? `${(p.done / 2 ** 20).toFixed(1)}/${(p.total / 2 ** 20).toFixed(1)} MiB`
        : `${p.done}/${p.total} tensors`;
    let bar = stageBars.get(p.stage);
    if (!bar) {
      bar = multi.create(1000, 0, { stage: p.stage.padEnd(8), detail });
      stageBars.set(p.stage, bar);
    }
    bar.update(Math.round(p.total ? (1000 * p.done) / p.total : 1000), { detail });
  };
  try {
    return await loadPipeline(opts.model, {
      towers,
      dtype,
      revision: opts.revision,
      batchSize,
      maxNumPatches,
      lowercase: opts.lowercase,
      verify: opts.verify,
      onProgress,
      onInfo: (m) => {
        if (!opts.json) console.error(m);
      },
    });
  } catch (e) {
    if (e instanceof ModelUnavailableError) {
      // Say it with the command being run.
      throw new Error(e.message.replace(offlineHelp(), offlineHelp(example)), { cause: e });
    }
    throw e;
  } finally {
    multi?.stop();
  }
}
