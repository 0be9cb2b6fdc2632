// `npm run fuzz -- --count N [--seed S] [--start I] [--only I] [--targets a,b]`: the reader fuzzer
// (bench/fuzz/targets.ts) for long runs. The mutants run in a worker thread; the main thread restarts it past a
// mutant that stops reporting for 60 s (a hang). Exit status 1 when any mutant failed.
import * as tf from '@tensorflow/tfjs';
import { rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { FIXTURES } from '../test/helpers/fixtures.js';
import { type MutantResult, ReaderFuzzer, type Target, TARGETS } from './fuzz/targets.js';

interface Job {
  seed: number;
  start: number;
  end: number;
  targets: Target[];
  verbose: boolean;
}

type Message =
  | { kind: 'ready'; setupMs: number; workDir: string }
  | { kind: 'result'; result: MutantResult; rssMb: number }
  | { kind: 'done' };

/** Peak resident memory of the process so far, MiB. */
const peakRssMb = () => process.resourceUsage().maxRSS / 1024;

/** A mutant that raises the process's peak memory by more than this allocated far more than the file. */
const ALLOCATION_LIMIT_MB = 256;

async function worker(job: Job): Promise<void> {
  tf.env().set('PROD', true);
  await tf.setBackend('cpu');
  console.warn = () => undefined; // unused-tensor warnings of mutated configs
  const t0 = performance.now();
  const fuzzer = await ReaderFuzzer.prepare({
    tinyDir: `${FIXTURES}/siglip_tiny`,
    targets: job.targets,
  });
  parentPort!.postMessage({
    kind: 'ready',
    setupMs: performance.now() - t0,
    workDir: fuzzer.workDir,
  } satisfies Message);
  try {
    for (let i = job.start; i < job.end; i++) {
      const before = peakRssMb();
      const result = await fuzzer.run(job.seed, i);
      const rss = peakRssMb();
      if (rss - before > ALLOCATION_LIMIT_MB && result.outcome !== 'failed') {
        result.outcome = 'failed';
        result.detail = `peak memory rose by ${(rss - before).toFixed(0)} MiB`;
      }
      if (result.what.includes('[LEAK')) {
        result.outcome = 'failed';
        result.detail = `leaked tensors (${result.detail ?? result.outcome})`;
      }
      parentPort!.postMessage({ kind: 'result', result, rssMb: rss } satisfies Message);
    }
  } finally {
    await fuzzer.cleanup();
  }
  parentPort!.postMessage({ kind: 'done' } satisfies Message);
}

function parseArgs(argv: string[]): Job & { only?: number } {
  const get = (flag: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const num = (flag: string, fallback: number) => {
    const v = get(flag);
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 0)
      throw new Error(`${flag} ${v}: expected a non-negative integer`);
    return n;
  };
  const targets = (get('--targets')?.split(',') ?? [...TARGETS]) as Target[];
  for (const t of targets) {
    if (!TARGETS.includes(t))
      throw new Error(`--targets: unknown target ${t} (known: ${TARGETS.join(', ')})`);
  }
  const only = get('--only') === undefined ? undefined : num('--only', 0);
  const start = only ?? num('--start', 0);
  return {
    seed: num('--seed', 1),
    start,
    end: only !== undefined ? only + 1 : start + num('--count', 1000),
    targets,
    verbose: only !== undefined || argv.includes('--verbose'),
    only,
  };
}

async function main(): Promise<void> {
  const job = parseArgs(process.argv.slice(2));
  const t0 = performance.now();
  const counts = new Map<string, number>();
  const refusals = new Map<string, number>();
  const failures: MutantResult[] = [];
  let next = job.start;
  let slowest: MutantResult | undefined;
  let peak = 0;
  let setupMs = 0;
  while (next < job.end) {
    const from = next;
    await new Promise<void>((resolve, reject) => {
      const w = new Worker(fileURLToPath(import.meta.url), { workerData: { ...job, start: from } });
      let timer: NodeJS.Timeout | undefined;
      let workDir: string | undefined;
      const arm = (ms: number) => {
        clearTimeout(timer);
        timer = setTimeout(() => {
          failures.push({
            index: next,
            target: 'unknown',
            what: `no result within ${ms / 1000} s`,
            outcome: 'failed',
            detail: `hang (rerun with --seed ${job.seed} --only ${next} to see its target and mutation)`,
            ms,
          });
          next++;
          void w
            .terminate()
            .then(() => (workDir ? rm(workDir, { recursive: true, force: true }) : undefined))
            .then(() => resolve());
        }, ms);
      };
      arm(300_000); // setup converts the tiny model
      w.on('message', (m: Message) => {
        if (m.kind === 'ready') {
          setupMs += m.setupMs;
          workDir = m.workDir;
          arm(60_000);
        } else if (m.kind === 'result') {
          arm(60_000);
          const r = m.result;
          next = r.index + 1;
          peak = Math.max(peak, m.rssMb);
          const key = `${r.target} ${r.outcome}`;
          counts.set(key, (counts.get(key) ?? 0) + 1);
          if (r.outcome === 'refused') refusals.set(r.detail!, (refusals.get(r.detail!) ?? 0) + 1);
          if (r.outcome === 'failed') failures.push(r);
          if (!slowest || r.ms > slowest.ms) slowest = r;
          if (job.verbose) console.log(JSON.stringify(r));
          const done = r.index + 1 - job.start;
          if (done % 5000 === 0) {
            const s = (performance.now() - t0) / 1000;
            console.error(`${done} mutants, ${s.toFixed(0)} s, ${failures.length} failed`);
          }
        } else {
          clearTimeout(timer);
          resolve();
        }
      });
      w.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
  }
  const seconds = (performance.now() - t0) / 1000;
  const total = job.end - job.start;
  console.log(
    `fuzz: ${total} mutants (seed ${job.seed}, indices ${job.start}..${job.end - 1}) in ${seconds.toFixed(1)} s ` +
      `(${(setupMs / 1000).toFixed(1)} s setup), ${failures.length} failed; peak RSS ${peak.toFixed(0)} MiB; ` +
      `slowest ${slowest?.ms.toFixed(0)} ms (${slowest?.target}, mutant ${slowest?.index})`,
  );
  for (const [k, v] of [...counts].sort()) console.log(`  ${k.padEnd(24)} ${v}`);
  console.log(`  refused with: ${[...refusals].map(([k, v]) => `${k} ${v}`).join(', ')}`);
  for (const f of failures.slice(0, 30)) {
    console.log(`FAILED mutant ${f.index} (${f.target}): ${f.what}\n    ${f.detail}`);
  }
  if (failures.length) process.exitCode = 1;
}

if (isMainThread) {
  main().catch((e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exitCode = 2;
  });
} else {
  await worker(workerData as Job);
}
