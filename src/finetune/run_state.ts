// Checkpoints of a fine-tuning run: the training checkpoint (weights, AdamW moments, LoRA adapters; see
// train/checkpoint.ts) plus `state.json`, where the run stands: epoch, step within it, the epoch's data order and
// the random state, the number of metrics records written, the best evaluation so far.
import { existsSync, promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { loadTrainCheckpoint, saveTrainCheckpoint } from '../train/checkpoint.js';
import type { LoraAdapters } from '../train/lora.js';
import type { Trainer } from '../train/trainer.js';
import { replaceDirAtomic } from './atomic.js';

export const STATE_FILE = 'state.json';

export interface RunState {
  format: 'siglip2-finetune-state';
  version: 1;
  /** The epoch in progress or last finished (1-based; 0 before training). */
  epoch: number;
  /** Optimizer steps done within `epoch`. */
  stepInEpoch: number;
  /** `epoch` is finished and evaluated. */
  epochDone: boolean;
  /** Optimizer steps of the whole run. */
  step: number;
  /** The order the records of `epoch` are visited in (indices into the training records). */
  order: number[];
  /**
   * Random state. Every draw derives from the seed: the epoch's order from (seed, epoch), a sample's augmentation
   * from (seed, epoch, record index). Nothing else is random once the run has started.
   */
  rng: {
    seed: number;
    orderStream: 'mulberry32(seed, epoch)';
    augmentStream: 'mulberry32(seed, epoch, index)';
  };
  /** Records in metrics.jsonl when the checkpoint was written. */
  metricsRecords: number;
  /** The best evaluation so far (lowest validation loss). */
  best?: { epoch: number; step: number; val_loss: number };
}

/** Writes `dir` (atomically) with the trainer's checkpoint and the state. */
export async function saveRunCheckpoint(
  dir: string,
  trainer: Trainer,
  lora: LoraAdapters | undefined,
  state: RunState,
): Promise<void> {
  await replaceDirAtomic(dir, async (tmp) => {
    await saveTrainCheckpoint(tmp, trainer, lora);
    await fsp.writeFile(join(tmp, STATE_FILE), JSON.stringify(state) + '\n');
  });
}

/** Reads the state of a checkpoint folder. */
export async function readRunState(dir: string): Promise<RunState> {
  const path = join(dir, STATE_FILE);
  if (!existsSync(path)) throw new Error(`${dir}: no ${STATE_FILE} (not a finetune checkpoint)`);
  const s = JSON.parse(await fsp.readFile(path, 'utf8')) as RunState;
  if (s.format !== 'siglip2-finetune-state') {
    throw new Error(
      `${path}: not a finetune checkpoint state (format ${JSON.stringify(s.format)})`,
    );
  }
  return s;
}

/** Restores weights, optimizer and adapters from `dir` into the trainer; returns the run state. */
export async function loadRunCheckpoint(
  dir: string,
  trainer: Trainer,
  lora: LoraAdapters | undefined,
): Promise<RunState> {
  const state = await readRunState(dir);
  await loadTrainCheckpoint(dir, trainer, lora);
  return state;
}
