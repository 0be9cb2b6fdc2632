import { type LrSchedule, warmupCosine } from '../train/optimizer.js';
import type { ScheduleName } from './run_config.js';

/** Warm-up steps: a value below 1 is a fraction of all steps. */
export function warmupSteps(warmup: number, totalSteps: number): number {
  return warmup > 0 && warmup < 1 ? Math.round(warmup * totalSteps) : Math.round(warmup);
}

/**
 * The learning rate per optimizer step (0-based): linear warm-up from `peak / warmup` to `peak`, then `cosine`
 * decay to 0 at `totalSteps`, `linear` decay to 0, or `constant`.
 */
export function learningRateSchedule(
  name: ScheduleName,
  peak: number,
  warmup: number,
  totalSteps: number,
): LrSchedule {
  const w = warmupSteps(warmup, totalSteps);
  if (w >= totalSteps && name !== 'constant') {
    throw new Error(
      `--warmup ${warmup}: ${w} warm-up steps leave none of the ${totalSteps} steps for the ${name} decay`,
    );
  }
  if (name === 'cosine') return warmupCosine({ peak, warmupSteps: w, totalSteps });
  const ramp = (s: number) => (peak * (s + 1)) / w;
  if (name === 'constant') return (s) => (s < w ? ramp(s) : peak);
  return (s) => (s < w ? ramp(s) : peak * Math.max(0, 1 - (s - w) / (totalSteps - w)));
}
