import cliProgress from 'cli-progress';
import type { DownloadProgress } from './download.js';

export interface ProgressRenderer {
  /** Pass as `onProgress` to snapshotDownload. */
  onProgress: (p: DownloadProgress) => void;
  /** Draws the final state and releases the terminal. Safe to call twice. */
  stop: () => void;
  /** Whether bars are drawn (false: every call is a no-op). */
  readonly active: boolean;
}

export interface ProgressRendererOptions {
  /** Where to draw (default process.stderr). */
  stream?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** Force on or off; default: on only when `stream.isTTY`. */
  enabled?: boolean;
}

/** `1.2 MB`, `340 kB`, `17 B` (decimal units, as the hub shows sizes). */
export function formatBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = n;
  let u = 0;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${units[u]}`;
}

/**
 * A cli-progress multibar, one bar per file, drawn only on a TTY (quiet in logs and CI).
 */
export function createProgressRenderer(opts: ProgressRendererOptions = {}): ProgressRenderer {
  const stream = opts.stream ?? process.stderr;
  const enabled = opts.enabled ?? stream.isTTY === true;
  if (!enabled) {
    return { onProgress: () => {}, stop: () => {}, active: false };
  }
  const multibar = new cliProgress.MultiBar(
    {
      stream: stream as NodeJS.WritableStream,
      format: ' {bar} {percentage}% | {size} | {file}',
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      noTTYOutput: stream.isTTY !== true,
      notTTYSchedule: 1000,
      barsize: 30,
      fps: 10,
    },
    cliProgress.Presets.shades_classic,
  );
  const bars = new Map<string, cliProgress.SingleBar>();
  let stopped = false;
  return {
    active: true,
    onProgress(p: DownloadProgress) {
      if (stopped) return;
      const payload = { file: p.file, size: `${formatBytes(p.loaded)}/${formatBytes(p.total)}` };
      const total = Math.max(p.total, 1);
      const bar = bars.get(p.file);
      if (!bar) bars.set(p.file, multibar.create(total, p.loaded, payload));
      else {
        bar.setTotal(total);
        bar.update(p.loaded, payload);
      }
    },
    stop() {
      if (stopped) return;
      stopped = true;
      multibar.stop();
    },
  };
}
