// The settings of a fine-tuning run, their checks, and `<out>/run.json` (what `--resume` continues with).
import { existsSync, promises as fsp } from 'node:fs';
import { join } from 'node:path';
import type { AugmentOptions } from './augment.js';
import { DEFAULT_FOLDER_TEMPLATE } from './data_source.js';
import { type FinetuneMode, MODES, DEFAULT_LORA_RANK, DEFAULT_LORA_TARGETS } from './modes.js';

export const SCHEDULES = ['cosine', 'linear', 'constant'] as const;
export type ScheduleName = (typeof SCHEDULES)[number];

/** Everything that decides what a run computes (saved in run.json; a resumed run keeps it). */
export interface FinetuneSettings {
  /** Model spec as given (folder, converted folder, org/name). */
  model: string;
  train: string;
  val?: string;
  valSplit?: number;
  imageColumn: string;
  captionColumn: string;
  /** Class folders: caption template (also the zero-shot prompt). */
  template: string;
  mode: FinetuneMode;
  loraRank: number;
  loraAlpha: number;
  loraTargets: string[];
  freeze?: string;
  batchSize: number;
  accumulate: number;
  lr: number;
  /** Warm-up optimizer steps (a value below 1 is a fraction of all steps). */
  warmup: number;
  schedule: ScheduleName;
  weightDecay: number;
  maxGradNorm?: number;
  checkpointing: boolean;
  seed: number;
  maxNumPatches?: number;
  lowercase: boolean;
  augment: AugmentOptions;
}

/** Settings that may change when a run is resumed (they do not change what is computed, or extend it). */
export interface RunControl {
  /** Total epochs of the run. */
  epochs: number;
}

export const DEFAULT_SETTINGS: Omit<FinetuneSettings, 'model' | 'train'> = {
  imageColumn: 'image',
  captionColumn: 'caption',
  template: DEFAULT_FOLDER_TEMPLATE,
  mode: 'lora',
  loraRank: DEFAULT_LORA_RANK,
  loraAlpha: 2 * DEFAULT_LORA_RANK,
  loraTargets: DEFAULT_LORA_TARGETS,
  batchSize: 32,
  accumulate: 1,
  lr: 1e-4,
  warmup: 0,
  schedule: 'cosine',
  weightDecay: 0.01,
  checkpointing: false,
  seed: 0,
  lowercase: true,
  augment: {},
};

function check(ok: boolean, message: string): void {
  if (!ok) throw new Error(message);
}

/** Checks the numbers and names of the settings, naming the flag at fault. */
export function validateSettings(s: FinetuneSettings, c: RunControl): void {
  const posInt = (v: number, flag: string) =>
    check(Number.isInteger(v) && v >= 1, `${flag} ${v}: expected a positive integer`);
  check(
    (MODES as readonly string[]).includes(s.mode),
    `--mode ${s.mode}: expected one of ${MODES.join(', ')}`,
  );
  check(
    (SCHEDULES as readonly string[]).includes(s.schedule),
    `--schedule ${s.schedule}: expected one of ${SCHEDULES.join(', ')}`,
  );
  posInt(c.epochs, '--epochs');
  posInt(s.batchSize, '--batch-size');
  posInt(s.accumulate, '--accumulate');
  posInt(s.loraRank, '--lora-rank');
  check(
    Number.isFinite(s.loraAlpha) && s.loraAlpha > 0,
    `--lora-alpha ${s.loraAlpha}: expected a positive number`,
  );
  check(s.loraTargets.length > 0, '--lora-targets: the list is empty');
  check(Number.isFinite(s.lr) && s.lr > 0, `--lr ${s.lr}: expected a positive number`);
  check(
    Number.isFinite(s.warmup) && s.warmup >= 0,
    `--warmup ${s.warmup}: expected steps >= 0 or a fraction`,
  );
  check(
    Number.isFinite(s.weightDecay) && s.weightDecay >= 0,
    `--weight-decay ${s.weightDecay}: expected a number >= 0`,
  );
  if (s.maxGradNorm !== undefined) {
    check(s.maxGradNorm > 0, `--max-grad-norm ${s.maxGradNorm}: expected a positive number`);
  }
  check(Number.isInteger(s.seed), `--seed ${s.seed}: expected an integer`);
  if (s.maxNumPatches !== undefined) posInt(s.maxNumPatches, '--max-num-patches');
  if (s.valSplit !== undefined) {
    check(s.val === undefined, '--val and --val-split: give one of them, not both');
    check(
      s.valSplit > 0 && s.valSplit < 1,
      `--val-split ${s.valSplit}: expected a fraction between 0 and 1`,
    );
  }
  const cs = s.augment.cropScale;
  if (cs !== undefined)
    check(cs > 0 && cs <= 1, `--crop-scale ${cs}: expected a fraction in (0, 1]`);
  check(s.template.includes('{}'), `--template ${JSON.stringify(s.template)}: must contain {}`);
}

export const RUN_FILE = 'run.json';

/** `<out>/run.json`. */
export interface RunFile {
  format: 'siglip2-finetune-run';
  version: 1;
  settings: FinetuneSettings;
  epochs: number;
  /** Model the run started from: its resolved location and configuration. */
  modelLocation: string;
  modelConfig: unknown;
  data: {
    train: { pairs: number; fingerprint: string };
    val: { pairs: number; fingerprint: string };
  };
}

export async function readRunFile(out: string): Promise<RunFile> {
  const path = join(out, RUN_FILE);
  if (!existsSync(path)) {
    throw new Error(
      `--resume ${out}: no ${RUN_FILE} there; not the output folder of a siglip2 finetune run`,
    );
  }
  let json: RunFile;
  try {
    json = JSON.parse(await fsp.readFile(path, 'utf8')) as RunFile;
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${(e as Error).message})`, { cause: e });
  }
  if (json.format !== 'siglip2-finetune-run') {
    throw new Error(
      `${path}: not a siglip2 finetune run description (format ${JSON.stringify(json.format)})`,
    );
  }
  return json;
}

/**
 * A resumed run keeps the settings in run.json. Settings given again on the command line must agree (a different
 * model or mode is a different run): the differences are listed in the error.
 */
export function checkResumeSettings(
  out: string,
  saved: FinetuneSettings,
  given: Partial<FinetuneSettings>,
): void {
  const flag = (k: string) => '--' + k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  const diffs = Object.entries(given)
    .filter(
      ([k, v]) =>
        v !== undefined && JSON.stringify(v) !== JSON.stringify(saved[k as keyof FinetuneSettings]),
    )
    .map(
      ([k, v]) =>
        `${flag(k)} ${JSON.stringify(v)} (the run has ${JSON.stringify(saved[k as keyof FinetuneSettings])})`,
    );
  if (diffs.length) {
    throw new Error(
      `--resume ${out}: that run was made with other settings: ${diffs.join('; ')}. A resumed run continues ` +
        'with its own settings (only --epochs, --backend, --threads and --json may change); start a new run in ' +
        'another --out folder instead',
    );
  }
}
