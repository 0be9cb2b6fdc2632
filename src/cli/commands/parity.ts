import type { Command } from 'commander';
import {
  formatParity,
  PARITY_BACKENDS,
  type ParityBackend,
  runParity,
} from '../../parity/index.js';

interface ParityCliOptions {
  model: string;
  backends: string;
  fixture?: string;
  atol?: string;
  rtol?: string;
  threads?: number;
  json?: boolean;
  allowMissing?: boolean;
}

export function registerParity(program: Command): void {
  program
    .command('parity')
    .description(
      'run the same inputs on several backends and compare every output, backend against backend and against a ' +
        'fixture; exit 1 beyond tolerance, when a backend fails, or when a backend asked for is unavailable',
    )
    .requiredOption(
      '--model <dir>',
      'converted model folder (siglip.json), or a checkpoint folder (converted to a temporary folder)',
    )
    .option(
      '--backends <list>',
      `comma-separated, of ${PARITY_BACKENDS.join(', ')} (the --backend option of the other commands)`,
      'cpu,wasm,webgpu',
    )
    .option('--backend <list>', 'same as --backends')
    .option('--fixture <dir>', 'fixture folder: use its inputs and compare with its outputs')
    .option('--atol <x>', 'absolute tolerance (default: the fixture suggestion, else 1e-4)')
    .option('--rtol <x>', 'relative tolerance (default: the fixture suggestion, else 1e-4)')
    .option('--threads <n>', 'wasm threads in Node (default: all cores)', (v) =>
      Number.parseInt(v, 10),
    )
    .option(
      '--allow-missing',
      'a backend that cannot run here (package, adapter or browser missing) does not fail the command',
    )
    .option('--json', 'print a JSON report')
    .action(async (opts: ParityCliOptions & { backend?: string }) => {
      const list = (opts.backend ?? opts.backends)
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s);
      for (const b of list) {
        if (!(PARITY_BACKENDS as readonly string[]).includes(b)) {
          throw new Error(`--backends: unknown backend '${b}' (${PARITY_BACKENDS.join(', ')})`);
        }
      }
      const tol = (v: string | undefined, what: string) => {
        if (v === undefined) return undefined;
        const n = Number(v);
        if (!(n >= 0)) throw new Error(`--${what} ${v}: expected a number >= 0`);
        return n;
      };
      const atol = tol(opts.atol, 'atol');
      const rtol = tol(opts.rtol, 'rtol');
      const report = await runParity(opts.model, {
        backends: list as ParityBackend[],
        fixture: opts.fixture,
        threads: opts.threads,
        allowMissing: opts.allowMissing,
        tolerance:
          atol !== undefined || rtol !== undefined
            ? { atol: atol ?? 1e-4, rtol: rtol ?? 1e-4 }
            : undefined,
        onRun: opts.json ? undefined : (r) => console.error(`${r.backend}: ${r.reason}`),
      });
      if (opts.json) {
        console.log(
          JSON.stringify(
            { ...report, runs: report.runs.map((r) => ({ ...r, outputs: undefined })) },
            null,
            2,
          ),
        );
      } else {
        console.log(formatParity(report));
      }
      if (!report.ok) process.exitCode = 1;
    });
}
