import * as tf from '@tensorflow/tfjs';
import type { Command } from 'commander';
import { formatComparisons } from '../../check/compare.js';
import { runFixture } from '../../check/index.js';

async function selectBackend(name: string): Promise<void> {
  if (name === 'wasm') await import('@tensorflow/tfjs-backend-wasm');
  else if (name !== 'cpu') throw new Error(`--backend ${name}: expected cpu or wasm`);
  if (!(await tf.setBackend(name)))
    throw new Error(`--backend ${name}: the backend failed to start`);
  await tf.ready();
}

export function registerCheck(program: Command): void {
  program
    .command('check')
    .description(
      'run a fixture folder (cases.json + checkpoint + inputs + outputs) and compare every output with its golden value',
    )
    .argument('<fixture-folder>', 'folder produced by the reference Python implementation')
    .option('--backend <name>', 'TF.js backend: cpu or wasm', 'cpu')
    .option('--json', 'print a JSON report instead of a table')
    .action(async (dir: string, opts: { backend: string; json?: boolean }) => {
      tf.enableProdMode();
      await selectBackend(opts.backend);
      const report = await runFixture(dir, { backend: opts.backend });
      if (opts.json) {
        console.log(JSON.stringify(report, null, 2));
      } else {
        console.log(`${report.fixture} (${report.kind}) on ${opts.backend}`);
        console.log(formatComparisons(report.outputs));
        const bad = report.outputs.filter((o) => !o.ok).length;
        console.log(
          report.ok
            ? `all ${report.outputs.length} outputs within tolerance`
            : `${bad} of ${report.outputs.length} outputs out of tolerance`,
        );
      }
      if (!report.ok) process.exitCode = 1;
    });
}
