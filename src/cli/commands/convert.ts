import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { convertCheckpoint, DEFAULT_SHARD_BYTES } from '../../../converter/convert.js';
import { resolveSource } from '../../../converter/source.js';
import { STORAGE_DTYPES, type StorageDtype } from '../../loader/manifest.js';
import type { TowerChoice } from '../../model/siglip_model.js';
import { type BackendCliOptions, backendOptions, selectBackend } from '../backend_option.js';

interface ConvertCliOptions {
  dtype: string;
  shardSizeMb: string;
  towers: string;
  revision?: string;
  overwrite?: boolean;
  json?: boolean;
}

function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

export function registerConvert(program: Command): void {
  const cmd = program
    .command('convert')
    .description(
      'convert a Hugging Face SigLIP / SigLIP 2 checkpoint (local folder or hub repo id) into TF.js LayersModel artifacts',
    )
    .argument('<source>', 'checkpoint folder (config.json + safetensors) or hub repo id owner/name')
    .argument(
      '<out-folder>',
      'where to write siglip.json, vision/, text/, scores/ and processor files',
    )
    .option('--dtype <dtype>', `weight storage: ${STORAGE_DTYPES.join(', ')}`, 'float32')
    .option(
      '--shard-size-mb <mb>',
      'maximum size of one shard file in MiB',
      String(DEFAULT_SHARD_BYTES / 1024 / 1024),
    )
    .option('--towers <towers>', 'both, vision or text', 'both')
    .option('--revision <rev>', 'hub revision (branch, tag or commit) when <source> is a repo id')
    .option('--overwrite', 'replace a previous conversion in <out-folder>')
    .option('--json', 'print a JSON report (and no progress bars)');
  backendOptions(cmd, 'cpu').action(
    async (src: string, out: string, opts: ConvertCliOptions & BackendCliOptions) => {
      await selectBackend(opts, opts.json);
      const dtype = opts.dtype as StorageDtype;
      if (!STORAGE_DTYPES.includes(dtype)) {
        throw new Error(`--dtype ${opts.dtype}: expected one of ${STORAGE_DTYPES.join(', ')}`);
      }
      const shardMb = Number(opts.shardSizeMb);
      if (!(shardMb > 0))
        throw new Error(`--shard-size-mb ${opts.shardSizeMb}: expected a positive number`);
      if (!['both', 'vision', 'text'].includes(opts.towers)) {
        throw new Error(`--towers ${opts.towers}: expected both, vision or text`);
      }
      const bars = !opts.json && process.stderr.isTTY;
      const multi = bars
        ? new cliProgress.MultiBar(
            {
              stream: process.stderr,
              format: '{label} [{bar}] {percentage}% {value}/{total} {unit} {detail}',
              hideCursor: true,
              clearOnComplete: false,
            },
            cliProgress.Presets.shades_classic,
          )
        : undefined;
      let download: cliProgress.SingleBar | undefined;
      const source = await resolveSource(src, {
        revision: opts.revision,
        onProgress: (done, total) => {
          if (!multi) return;
          download ??= multi.create(Math.max(1, Math.round(total / 2 ** 20)), 0, {
            label: 'download',
            unit: 'MiB',
            detail: '',
          });
          download.update(Math.round(done / 2 ** 20));
        },
      });
      let bar: cliProgress.SingleBar | undefined;
      try {
        const result = await convertCheckpoint(source.dir, out, {
          dtype,
          shardBytes: Math.round(shardMb * 1024 * 1024),
          towers: opts.towers as TowerChoice,
          overwrite: opts.overwrite,
          source: { repo: source.repo, revision: source.revision },
          onProgress: (p) => {
            if (!multi) return;
            bar ??= multi.create(Math.max(1, Math.round(p.bytesTotal / 2 ** 20)), 0, {
              label: 'convert ',
              unit: 'MiB',
              detail: '',
            });
            bar.update(Math.round(p.bytesDone / 2 ** 20), { detail: p.tensor });
          },
        });
        multi?.stop();
        const m = result.manifest;
        if (opts.json) {
          console.log(
            JSON.stringify({ ...result, rss: process.resourceUsage().maxRSS * 1024 }, null, 2),
          );
        } else {
          console.log(
            `converted ${source.repo ?? source.dir} -> ${out} (${m.dtype}, ${result.seconds.toFixed(1)} s)`,
          );
          for (const [tower, info] of Object.entries(m.towers)) {
            console.log(
              `  ${tower.padEnd(7)} ${String(info.parameters).padStart(13)} parameters  ${mb(info.weightBytes).padStart(12)}  ${info.shards} shard(s)`,
            );
          }
          if (m.files.length) console.log(`  copied: ${m.files.join(', ')}`);
        }
      } finally {
        multi?.stop();
      }
    },
  );
}
