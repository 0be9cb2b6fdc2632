// Load time and peak memory of converted float32 artifacts (not the random-fill path of `npm run bench`): for each
// tower, loadSiglip with memory-mapped weights and with plain file reads, each with and without SHA-256
// verification, then the workload run twice (the text tower: 8 texts x 64 tokens; the vision tower: 1 image). Each
// configuration runs in its own process, so every peak RSS is its own.
//
// npm run bench:load -- <converted-dir> [--backend native|cpu] [--towers text,vision] [--threads N] [--runs 2]
//   [--configs mmap,mmap-noverify,read,read-noverify]
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import '../src/index.js';
import { type BackendName, useBackend } from '../src/backends/index.js';
import { loadSiglip } from '../src/loader/index.js';
import { disposeTowerOutputs } from '../src/model/tower_outputs.js';
import { arg } from './cli.js';

const GiB = 2 ** 30;

/** Peak and current resident memory of this process, from /proc/self/status (GiB). */
function memory(): { peak: number; rss: number; file: number; anon: number } {
  const status = readFileSync('/proc/self/status', 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
  return {
    peak: (kb('VmHWM') * 1024) / GiB,
    rss: (kb('VmRSS') * 1024) / GiB,
    file: (kb('RssFile') * 1024) / GiB,
    anon: (kb('RssAnon') * 1024) / GiB,
  };
}

interface ChildResult {
  config: string;
  tower: string;
  loadSeconds: number;
  mappedGiB: number;
  copiedGiB: number;
  afterLoad: ReturnType<typeof memory>;
  runs: { seconds: number; mem: ReturnType<typeof memory> }[];
  backend: string;
}

async function child(): Promise<void> {
  const dir = process.argv[2];
  const tower = arg('tower', 'text') as 'text' | 'vision';
  const config = arg('config', 'mmap');
  const threads = process.argv.includes('--threads') ? Number(arg('threads', '2')) : undefined;
  const report = await useBackend(
    arg('backend', 'native') as BackendName,
    threads ? { threads } : {},
  );
  const t0 = performance.now();
  const model = await loadSiglip(dir, {
    towers: tower,
    mmap: config.startsWith('mmap'),
    verify: !config.endsWith('noverify'),
  });
  const loadSeconds = (performance.now() - t0) / 1000;
  const afterLoad = memory();
  const runs: ChildResult['runs'] = [];
  const n = Number(arg('runs', '2'));
  if (tower === 'text') {
    const vocab = model.config.textConfig!.vocabSize;
    const ids = tf.tensor2d(
      Int32Array.from({ length: 8 * 64 }, (_, i) => (i * 7919) % vocab),
      [8, 64],
      'int32',
    );
    for (let r = 0; r < n; r++) {
      const t = performance.now();
      const o = model.text!.predict(ids);
      await o.poolerOutput!.data();
      disposeTowerOutputs(o);
      runs.push({ seconds: (performance.now() - t) / 1000, mem: memory() });
    }
    ids.dispose();
  } else {
    const vc = model.config.visionConfig!;
    const size = 'imageSize' in vc ? (vc.imageSize as number) : 256;
    const pixels = tf.randomUniform([1, 3, size, size], -1, 1);
    for (let r = 0; r < n; r++) {
      const t = performance.now();
      const o = model.vision!.predict({ pixelValues: pixels });
      await o.poolerOutput!.data();
      disposeTowerOutputs(o);
      runs.push({ seconds: (performance.now() - t) / 1000, mem: memory() });
    }
    pixels.dispose();
  }
  const result: ChildResult = {
    config,
    tower,
    loadSeconds,
    mappedGiB: model.weightStorage.mappedBytes / GiB,
    copiedGiB: model.weightStorage.copiedBytes / GiB,
    afterLoad,
    runs,
    backend: report.reason,
  };
  model.dispose();
  console.log(JSON.stringify(result));
}

function parent(): void {
  const dir = process.argv[2];
  if (!dir || dir.startsWith('--')) {
    throw new Error('usage: npm run bench:load -- <converted-dir> [--backend native] [...]');
  }
  const towers = arg('towers', 'text,vision').split(',');
  const configs = arg('configs', 'mmap,mmap-noverify,read,read-noverify').split(',');
  const pass = ['backend', 'threads', 'runs'].flatMap((k) =>
    process.argv.includes(`--${k}`) ? [`--${k}`, arg(k, '')] : [],
  );
  console.log(
    `CPU: ${cpus()[0]?.model ?? 'unknown'} x ${cpus().length}; load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  );
  const rows: ChildResult[] = [];
  for (const tower of towers) {
    for (const config of configs) {
      const r = spawnSync(
        process.execPath,
        [
          fileURLToPath(import.meta.url),
          dir,
          '--child',
          '--tower',
          tower,
          '--config',
          config,
          ...pass,
        ],
        { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
      );
      if (r.status !== 0) throw new Error(`${tower} ${config} failed (${r.status}):\n${r.stderr}`);
      const line = r.stdout.trim().split('\n').pop()!;
      const res = JSON.parse(line) as ChildResult;
      if (!rows.length) console.log(`backend: ${res.backend}`);
      rows.push(res);
      const runs = res.runs
        .map((x, i) => `run ${i + 1} ${x.seconds.toFixed(2)} s, peak ${x.mem.peak.toFixed(2)} GiB`)
        .join('; ');
      console.log(
        `${tower} ${config}: load ${res.loadSeconds.toFixed(1)} s (mapped ${res.mappedGiB.toFixed(2)} GiB, read ` +
          `${res.copiedGiB.toFixed(2)} GiB), RSS after load ${res.afterLoad.rss.toFixed(2)} GiB; ${runs}; ` +
          `RSS at end ${res.runs.at(-1)?.mem.rss.toFixed(2)} GiB (file ${res.runs.at(-1)?.mem.file.toFixed(2)}, ` +
          `anon ${res.runs.at(-1)?.mem.anon.toFixed(2)})`,
      );
    }
  }
  console.log(
    '\n| tower | weights | verify | load s | peak RSS after 1st run GiB | peak RSS after last run GiB | last run s |',
  );
  console.log('|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const last = r.runs.at(-1)!;
    console.log(
      `| ${r.tower} | ${r.config.startsWith('mmap') ? 'mapped' : 'read'} | ${r.config.endsWith('noverify') ? 'no' : 'yes'} | ` +
        `${r.loadSeconds.toFixed(1)} | ${r.runs[0].mem.peak.toFixed(2)} | ${last.mem.peak.toFixed(2)} | ${last.seconds.toFixed(2)} |`,
    );
  }
}

if (process.argv.includes('--child')) await child();
else parent();
