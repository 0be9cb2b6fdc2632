/**
 * The model on the native backend against onnxruntime-node (the peer of `npm run bench:peer`) on the same tower, in
 * one process, run by run in turn: a whole forward pass on one, a pause, a whole forward pass on the other. Separate
 * processes minutes apart measure the machine's moods as much as the two libraries (on the 2-vCPU VMs here the
 * same work took 455-706 ms of CPU time per base image within one process); runs side by side share them.
 *
 *   npm run bench:peer-interleaved [-- --model base|so400m] [--tower vision|text] [--batch 1] [--rounds 10]
 *                                  [--pause-ms 300]
 *
 * The order alternates round by round (native first, then onnxruntime first). The pause before each run lets
 * onnxruntime's worker threads, which spin after a run, go idle before the next one (see `bench:peer-gemm`).
 */
import { cpus } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { useBackend } from '../src/backends/index.js';
import { arg, median } from './cli.js';
import { referenceSgemm } from './native_sgemm.js';
import { loadOrt } from './peer/ort.js';
import { peerFeeds, peerGraph, peerSession } from './peer/session.js';
import { towerRunner } from './tower_runner.js';
import { TEXTS, fullSizeConfig, imageGflop, textsGflop } from './workloads.js';

async function main(): Promise<void> {
  const modelName = arg('model', 'base');
  const tower = arg('tower', 'vision') === 'text' ? 'text' : 'vision';
  const batch = tower === 'text' ? TEXTS : Number(arg('batch', '1'));
  const rounds = Math.max(1, Number(arg('rounds', '10')));
  const pauseMs = Number(arg('pause-ms', '300'));
  const report = await useBackend('native');
  if (report.name !== 'native') {
    throw new Error(`bench:peer-interleaved needs the native backend: ${report.reason}`);
  }
  const { dir, config } = fullSizeConfig(modelName);
  const ort = loadOrt();
  const threads = cpus().length;
  console.log(`native: ${report.reason}`);
  console.log(
    `peer: onnxruntime-node ${ort.env.versions.node}, fp32, ${threads} intra-op threads; model ${dir} (${tower} tower), random weights`,
  );
  const ref = referenceSgemm();
  console.log(ref.line);

  const gflop = tower === 'text' ? textsGflop(config) : batch * imageGflop(config);
  const runner = towerRunner(modelName, tower, batch);
  const session = await peerSession(ort, peerGraph(dir, config, tower), threads);
  const feeds = peerFeeds(ort, config, tower, batch);
  const peerRun = async () => {
    const out = await session.run(feeds);
    for (const t of Object.values(out)) t.dispose();
  };
  const timed = async (f: () => Promise<void>) => {
    await sleep(pauseMs);
    const t0 = performance.now();
    await f();
    return (performance.now() - t0) / 1000;
  };
  for (let i = 0; i < 2; i++) {
    await runner.run(); // warm-up: packed weights, pooled outputs, onnxruntime's first run
    await peerRun();
  }
  const ours: number[] = [];
  const theirs: number[] = [];
  for (let r = 0; r < rounds; r++) {
    if (r % 2 === 0) {
      ours.push(await timed(runner.run));
      theirs.push(await timed(peerRun));
    } else {
      theirs.push(await timed(peerRun));
      ours.push(await timed(runner.run));
    }
  }
  runner.dispose();
  await session.release();

  const ratios = ours.map((t, i) => t / theirs[i]);
  const ahead = ratios.filter((q) => q < 1).length;
  const pct = (s: number) => `${((100 * gflop) / s / ref.gflops).toFixed(0)} %`;
  console.log(
    `${dir} ${tower}, ${runner.what}, ${rounds} rounds (native / onnxruntime, s): ${ours
      .map((t, i) => `${t.toFixed(3)}/${theirs[i].toFixed(3)}`)
      .join(' ')}`,
  );
  console.log('| | native | onnxruntime |');
  console.log('|---|---|---|');
  console.log(`| median s | ${median(ours).toFixed(3)} | ${median(theirs).toFixed(3)} |`);
  console.log(
    `| fastest s | ${Math.min(...ours).toFixed(3)} | ${Math.min(...theirs).toFixed(3)} |`,
  );
  console.log(`| median % of sgemm | ${pct(median(ours))} | ${pct(median(theirs))} |`);
  console.log(
    `native / onnxruntime: median of the rounds' ratios ${median(ratios).toFixed(2)}x ` +
      `(${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}), native faster in ${ahead} of ${rounds} rounds`,
  );
}

await main();
