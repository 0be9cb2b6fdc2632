// `<out>/metrics.jsonl`: one JSON object per optimizer step and per evaluation.
import { existsSync, promises as fsp } from 'node:fs';
import type { EvalMetrics } from './evaluation.js';

export interface StepMetrics {
  type: 'step';
  epoch: number;
  step: number;
  train_loss: number;
  lr: number;
  grad_norm: number;
  /** Wall-clock figures: differ between runs, left out when runs are compared. */
  seconds: number;
  images_per_s: number;
}

export interface EvalRecord extends EvalMetrics {
  type: 'eval';
  epoch: number;
  step: number;
  seconds: number;
}

export type MetricsRecord = StepMetrics | EvalRecord;

/** Fields that measure time, not learning. */
export const TIMING_FIELDS = ['seconds', 'images_per_s'] as const;

/** Appends records line by line; `truncate(n)` keeps only the first n lines (for a resumed run). */
export class MetricsLog {
  readonly records: MetricsRecord[] = [];

  constructor(readonly path: string) {}

  /** Reads the existing log and keeps its first `keep` records (the ones the checkpoint had seen). */
  async resume(keep: number): Promise<void> {
    const text = existsSync(this.path) ? await fsp.readFile(this.path, 'utf8') : '';
    const lines = text.split('\n').filter((l) => l.trim());
    if (lines.length < keep) {
      throw new Error(
        `${this.path}: ${lines.length} records, but the checkpoint was saved after ${keep}; the log was cut`,
      );
    }
    lines.slice(0, keep).forEach((l, i) => {
      try {
        this.records.push(JSON.parse(l) as MetricsRecord);
      } catch (e) {
        throw new Error(`${this.path}:${i + 1}: not valid JSON (${(e as Error).message})`, {
          cause: e,
        });
      }
    });
    const tmp = `${this.path}.tmp-${process.pid}`;
    await fsp.writeFile(
      tmp,
      lines
        .slice(0, keep)
        .map((l) => l + '\n')
        .join(''),
    );
    await fsp.rename(tmp, this.path);
  }

  async append(r: MetricsRecord): Promise<void> {
    this.records.push(r);
    await fsp.appendFile(this.path, JSON.stringify(r) + '\n');
  }
}
