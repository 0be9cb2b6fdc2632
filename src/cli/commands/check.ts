import type { Command } from 'commander';
import { formatComparisons } from '../../check/compare.js';
import { runFixture } from '../../check/index.js';
import { backendOptions, selectBackend } from '../backend_option.js';

export function registerCheck(program: Command): void {
  const cmd = program
    .command('check')
    .description(
      'run a fixture folder (cases.json + checkpoint + inputs + outputs) and compare every output with its golden value',
    )
    .argument('<fixture-folder>', 'folder produced by the reference Python implementation')
    .option('--json', 'print a JSON report instead of a table');
  backendOptions(cmd, 'cpu').action(
    async (dir: string, opts: { backend: string; threads?: number; json?: boolean }) => {
      const backend = await selectBackend(opts, opts.json);
      const report = await runFixture(dir, { backend: backend.name });
      if (opts.json) {
        console.log(JSON.stringify(report, null, 2));
      } else {
        console.log(`${report.fixture} (${report.kind}) on ${backend.name}`);
        console.log(formatComparisons(report.outputs));
        const bad = report.outputs.filter((o) => !o.ok).length;
        console.log(
          report.ok
            ? `all ${report.outputs.length} outputs within tolerance`
            : `${bad} of ${report.outputs.length} outputs out of tolerance`,
        );
      }
      if (!report.ok) process.exitCode = 1;
    },
  );
}
