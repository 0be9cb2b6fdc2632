import * as tf from '@tensorflow/tfjs';
import type { Command } from 'commander';
import { type BackendName, type BackendReport, useBackend } from '../backends/index.js';

const NAMES = ['auto', 'cpu', 'wasm', 'webgpu', 'tensorflow', 'native'] as const;

/** What backendOptions() adds to a command's options. */
export interface BackendCliOptions {
  backend?: string;
  threads?: number;
}

/** Adds `--backend` and `--threads` to a command. */
export function backendOptions(cmd: Command, fallback: (typeof NAMES)[number] = 'auto'): Command {
  return cmd
    .option('--backend <name>', `TF.js backend: ${NAMES.join(', ')}`, fallback)
    .option('--threads <n>', 'wasm and native threads (default: all cores)', (v) =>
      Number.parseInt(v, 10),
    );
}

/** Selects the backend the options name and prints the one-line report on stderr (unless quiet). */
export async function selectBackend(
  opts: { backend?: string; threads?: number },
  quiet = false,
): Promise<BackendReport> {
  const name = opts.backend ?? 'auto';
  if (!(NAMES as readonly string[]).includes(name)) {
    throw new Error(`--backend ${name}: expected one of ${NAMES.join(', ')}`);
  }
  tf.enableProdMode();
  const report = await useBackend(name as BackendName | 'auto', { threads: opts.threads });
  if (!quiet) console.error(`backend: ${report.reason}`);
  return report;
}
