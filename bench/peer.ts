/**
 * The peer benchmark: the same workloads as `npm run bench` on onnxruntime-node (what transformers.js runs in
 * Node), fp32, on an ONNX graph of the same tower with random weights (bench/peer/siglip_onnx.ts), so that the
 * two can be compared on one machine in one sitting.
 *
 *   npm run bench:peer [-- --model so400m|base] [--tower vision|text|both] [--threads N] [--runs 3] [--batches 1,4]
 *                      [--profile]
 *
 * The graphs are written once into the OS temp folder (`siglip2-peer/`) and reused. With the native addon built
 * it also prints the library sgemm reference of `npm run bench -- --backend native`, measured in this process.
 * `--profile` has onnxruntime profile every node and prints its kernel time by operator at the end (the runs'
 * times then include the profiler's own cost).
 */
import { cpus, loadavg } from 'node:os';
import { loadNativeAddon } from '../src/backends/native/addon.js';
import {
  TEXTS,
  TOKENS,
  eachTowerInItsOwnProcess,
  fullSizeConfig,
  imageGflop,
  textsGflop,
} from './workloads.js';
import { referenceSgemm } from './native_sgemm.js';
import { loadOrt, type OrtTensor } from './peer/ort.js';
import { newestProfile, printOrtProfile } from './peer/profile.js';
import { peerFeeds, peerGraph, peerProfilePrefix, peerSession } from './peer/session.js';
import { arg, median } from './cli.js';

const modelName = arg('model', 'so400m');
const tower = arg('tower', 'both');
const runs = Number(arg('runs', '3'));
const batches = arg('batches', '1,4').split(',').map(Number);
const threads = Number(arg('threads', String(cpus().length)));
const profile = process.argv.includes('--profile');

const peakRssGiB = () => (process.resourceUsage().maxRSS * 1024) / 2 ** 30;
async function main(): Promise<void> {
  if (tower === 'both') {
    eachTowerInItsOwnProcess(import.meta.url, 'peer benchmark');
    return;
  }
  const { dir, config } = fullSizeConfig(modelName);
  const ort = loadOrt();
  const modelPath = peerGraph(dir, config, tower === 'text' ? 'text' : 'vision');
  console.log(
    `peer: onnxruntime-node ${ort.env.versions.node}, fp32, CPU execution provider, ${threads} intra-op threads; model ${dir} (${tower} tower), random weights`,
  );
  const addon = loadNativeAddon();
  let sgemm: number | undefined;
  if (typeof addon !== 'string') {
    const ref = referenceSgemm();
    sgemm = ref.gflops;
    console.log(ref.line);
  }
  console.log(
    `load average at start: ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  );
  const t0 = performance.now();
  const profilePrefix = profile ? peerProfilePrefix() : undefined;
  const session = await peerSession(ort, modelPath, threads, profilePrefix);
  let sessionRuns = 0;
  const load = (performance.now() - t0) / 1000;
  console.log(
    `session create (load + optimise) ${load.toFixed(1)} s, peak RSS ${peakRssGiB().toFixed(2)} GiB`,
  );

  const rows: { label: string; s: number; items: number; gflop: number }[] = [];
  const time = async (
    label: string,
    items: number,
    gflop: number,
    feeds: Record<string, OrtTensor>,
  ) => {
    const run = async () => {
      sessionRuns++;
      const out = await session.run(feeds);
      for (const t of Object.values(out)) t.dispose();
    };
    sessionRuns++;
    const first = await session.run(feeds);
    const values = first.pooler_output.data;
    for (const t of Object.values(first)) t.dispose();
    if (!Array.from(values).every(Number.isFinite)) {
      throw new Error(`bench:peer: ${label} gave non-finite pooler_output values`);
    }
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const s = performance.now();
      await run();
      times.push((performance.now() - s) / 1000);
    }
    const m = median(times);
    console.log(
      `  ${label}: median ${m.toFixed(3)} s over ${runs} runs [${times.map((t) => t.toFixed(2)).join(', ')}]`,
    );
    rows.push({ label, s: m, items, gflop });
  };
  if (tower === 'vision') {
    const perImage = imageGflop(config);
    for (const b of batches) {
      const feeds = peerFeeds(ort, config, 'vision', b);
      await time(`${b} image${b > 1 ? 's' : ''}`, b, b * perImage, feeds);
    }
  } else {
    await time(
      `${TEXTS} texts x ${TOKENS}`,
      TEXTS,
      textsGflop(config),
      peerFeeds(ort, config, 'text', TEXTS),
    );
  }
  await session.release();
  if (profilePrefix !== undefined) printOrtProfile(newestProfile(profilePrefix), sessionRuns);
  console.log('\nsummary (peer)');
  console.log(`| workload | median s | items/s | GFLOP/s |${sgemm ? ' % of sgemm |' : ''}`);
  console.log(`|---|---|---|---|${sgemm ? '---|' : ''}`);
  for (const r of rows) {
    const gf = r.gflop / r.s;
    console.log(
      `| ${r.label} | ${r.s.toFixed(2)} | ${(r.items / r.s).toFixed(2)} | ${gf.toFixed(0)} |${sgemm ? ` ${((100 * gf) / sgemm).toFixed(0)} % |` : ''}`,
    );
  }
  console.log(
    `${tower} tower: session create ${load.toFixed(1)} s; peak RSS ${peakRssGiB().toFixed(2)} GiB`,
  );
}

await main();
