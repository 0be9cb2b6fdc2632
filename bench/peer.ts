/**
 * The peer benchmark: the same workloads as `npm run bench` on onnxruntime-node (what transformers.js runs in
 * Node), fp32, on an ONNX graph of the same tower with random weights (bench/peer/siglip_onnx.ts), so that the
 * two can be compared on one machine in one sitting.
 *
 *   npm run bench:peer [-- --model so400m|base] [--tower vision|text|both] [--threads N] [--runs 3] [--batches 1,4]
 *
 * The graphs are written once into the OS temp folder (`siglip2-peer/`) and reused. With the native addon built
 * it also prints the library sgemm reference of `npm run bench -- --backend native`, measured in this process.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadNativeAddon } from '../src/backends/native/addon.js';
import { eachTowerInItsOwnProcess, encoderGflop, fullSizeConfig } from './workloads.js';
import { referenceSgemm } from './native_sgemm.js';
import { loadOrt, type OrtTensor } from './peer/ort.js';
import { writeTextTower, writeVisionTower } from './peer/siglip_onnx.js';
import { arg, median } from './cli.js';

const modelName = arg('model', 'so400m');
const tower = arg('tower', 'both');
const runs = Number(arg('runs', '3'));
const batches = arg('batches', '1,4').split(',').map(Number);
const threads = Number(arg('threads', String(cpus().length)));

const peakRssGiB = () => (process.resourceUsage().maxRSS * 1024) / 2 ** 30;
async function main(): Promise<void> {
  if (tower === 'both') {
    eachTowerInItsOwnProcess(import.meta.url, 'peer benchmark');
    return;
  }
  const { dir, config } = fullSizeConfig(modelName);
  const vc = config.visionConfig!;
  const tc = config.textConfig!;
  const ort = loadOrt();
  const cache = join(tmpdir(), 'siglip2-peer');
  mkdirSync(cache, { recursive: true });
  const base = join(cache, `${dir}-${tower}`);
  const modelPath = `${base}.onnx`;
  if (!existsSync(modelPath)) {
    const t0 = performance.now();
    if (tower === 'vision') writeVisionTower(`${base}.weights`, modelPath, vc);
    else writeTextTower(`${base}.weights`, modelPath, tc, 64);
    console.log(`wrote ${modelPath} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
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
  const session = await ort.InferenceSession.create(modelPath, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
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
      const out = await session.run(feeds);
      for (const t of Object.values(out)) t.dispose();
    };
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
    const size = vc.modelType === 'siglip_vision_model' ? vc.imageSize : 256;
    const patches = (size / vc.patchSize) ** 2;
    const perImage =
      encoderGflop(vc.hiddenSize, vc.intermediateSize, vc.numHiddenLayers, patches) +
      (2 * patches * 3 * vc.patchSize ** 2 * vc.hiddenSize) / 1e9;
    for (const b of batches) {
      const data = Float32Array.from({ length: b * 3 * size * size }, (_, i) => Math.sin(i) * 0.9);
      const pixels = new ort.Tensor('float32', data, [b, 3, size, size]);
      await time(`${b} image${b > 1 ? 's' : ''}`, b, b * perImage, { pixel_values: pixels });
    }
  } else {
    const ids = BigInt64Array.from({ length: 8 * 64 }, (_, i) => BigInt((i * 7919) % tc.vocabSize));
    await time(
      '8 texts x 64',
      8,
      8 * encoderGflop(tc.hiddenSize, tc.intermediateSize, tc.numHiddenLayers, 64),
      {
        input_ids: new ort.Tensor('int64', ids, [8, 64]),
      },
    );
  }
  await session.release();
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
