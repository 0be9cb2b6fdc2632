/**
 * The model benchmark: SigLIP so400m-patch16-256 (or another full-size config) with random weights.
 *
 *   npm run bench [-- --model so400m|base] [--backend wasm|cpu|webgpu|native] [--threads N] [--runs N] [--batches 1,4]
 *                 [--profile | --profile-shapes]
 *
 * Measures one image, a batch of 4 images and 8 texts of 64 tokens: median seconds, images/s, achieved
 * GFLOP/s, peak RSS and build time, plus (with --profile) a per-kernel time profile of one run of each
 * (--profile-shapes: each kernel's input shapes apart, matMuls with their GFLOP/s).
 * The towers are built and run one at a time (so400m in float32 is 4.5 GB, over wasm's 4 GB heap).
 * On the native backend it also measures the library's own large sgemm in the same process and gives each
 * workload's GFLOP/s as a percentage of it.
 */
import * as tf from '@tensorflow/tfjs';
import { loadavg } from 'node:os';
import { type BackendName, useBackend } from '../src/backends/index.js';
import { SiglipModel } from '../src/model/siglip_model.js';
import { disposeTowerOutputs } from '../src/model/tower_outputs.js';
import { kernelProfile, profileFlags } from './kernel_profile.js';
import { printGemmChoices, referenceSgemm } from './native_sgemm.js';
import { fillRandom } from './random_weights.js';
import {
  TEXTS,
  TOKENS,
  benchImageSize,
  benchTokenIds,
  eachTowerInItsOwnProcess,
  fullSizeConfig,
  imageGflop,
  textsGflop,
} from './workloads.js';
import { arg, median } from './cli.js';

const modelName = arg('model', 'so400m');
const backend = arg('backend', 'wasm') as BackendName;
const runs = Number(arg('runs', '3'));
const batches = arg('batches', '1,4').split(',').map(Number);
const { profile, byShape: profileShapes } = profileFlags();
const profileTop = profileShapes ? 30 : 12;
const tower = arg('tower', 'both');
const threads = process.argv.includes('--threads') ? Number(arg('threads', '2')) : undefined;

/** Peak resident set size so far, as the kernel tracks it (kernels run synchronously, so no timer could sample). */
const peakRssGiB = () => (process.resourceUsage().maxRSS * 1024) / 2 ** 30;

async function time(label: string, fn: () => Promise<void>): Promise<number> {
  const times: number[] = [];
  await fn(); // warm-up: kernels compiled, buffers allocated
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    times.push((performance.now() - t0) / 1000);
  }
  const m = median(times);
  console.log(
    `  ${label}: median ${m.toFixed(3)} s over ${runs} runs [${times.map((t) => t.toFixed(2)).join(', ')}]`,
  );
  return m;
}

async function main(): Promise<void> {
  if (tower === 'both') {
    eachTowerInItsOwnProcess(import.meta.url, 'benchmark');
    return;
  }
  const { dir, config } = fullSizeConfig(modelName);
  const size = benchImageSize(config);
  const perImage = imageGflop(config);
  const textGflop8 = textsGflop(config);
  const report = await useBackend(backend, threads ? { threads } : {});
  console.log(`model ${dir}, random weights; backend: ${report.reason}`);
  let sgemm: number | undefined;
  if (report.name === 'native') {
    const ref = referenceSgemm();
    sgemm = ref.gflops;
    console.log(ref.line);
  }
  const ofSgemm = (gflops: number) =>
    sgemm === undefined ? '' : ` ${((100 * gflops) / sgemm).toFixed(0)} % |`;
  console.log(
    `work: ${perImage.toFixed(0)} GFLOP per image, ${textGflop8.toFixed(0)} GFLOP per 8 texts of 64 tokens`,
  );
  console.log(
    `load average at start: ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  );

  const results: Record<string, number> = {};
  let visionBuild = 0;
  let textBuild = 0;
  if (tower === 'vision') {
    // Vision tower
    const t0 = performance.now();
    const vision = SiglipModel.build(config, { weightInit: 'zeros', towers: 'vision' });
    fillRandom(vision.vision!.model);
    visionBuild = (performance.now() - t0) / 1000;
    console.log(
      `vision tower: build + random fill ${visionBuild.toFixed(1)} s, peak RSS ${peakRssGiB().toFixed(2)} GiB`,
    );
    for (const batch of batches) {
      const pixels = tf.randomUniform([batch, 3, size, size], -1, 1);
      const s = await time(`${batch} image${batch > 1 ? 's' : ''}`, async () => {
        const o = vision.vision!.predict({ pixelValues: pixels });
        await o.poolerOutput!.data();
        disposeTowerOutputs(o);
      });
      results[`image${batch}`] = s;
      if (profile) {
        await kernelProfile(
          `${batch} image(s)`,
          () => {
            const o = vision.vision!.predict({ pixelValues: pixels });
            return [o.lastHiddenState, o.poolerOutput!];
          },
          profileTop,
          profileShapes,
        );
      }
      pixels.dispose();
    }
    vision.dispose();
  } else {
    // Text tower
    const t0 = performance.now();
    const text = SiglipModel.build(config, { weightInit: 'zeros', towers: 'text' });
    fillRandom(text.text!.model);
    textBuild = (performance.now() - t0) / 1000;
    console.log(
      `text tower: build + random fill ${textBuild.toFixed(1)} s, peak RSS ${peakRssGiB().toFixed(2)} GiB`,
    );
    const ids = tf.tensor2d(benchTokenIds(config), [TEXTS, TOKENS], 'int32');
    results.text8 = await time('8 texts x 64 tokens', async () => {
      const o = text.text!.predict(ids);
      await o.poolerOutput!.data();
      disposeTowerOutputs(o);
    });
    if (profile) {
      await kernelProfile(
        '8 texts',
        () => {
          const o = text.text!.predict(ids);
          return [o.lastHiddenState, o.poolerOutput!];
        },
        profileTop,
        profileShapes,
      );
    }
    ids.dispose();
    text.dispose();
  }

  if (report.name === 'native' && profile) printGemmChoices();
  console.log('\nsummary');
  console.log(
    `| workload | median s | items/s | GFLOP/s |${sgemm === undefined ? '' : ' % of sgemm |'}`,
  );
  console.log(`|---|---|---|---|${sgemm === undefined ? '' : '---|'}`);
  const g = perImage;
  for (const b of tower === 'vision' ? batches : []) {
    const t = results[`image${b}`];
    const label = `${b} image${b > 1 ? 's' : ''}`;
    console.log(
      `| ${label} | ${t.toFixed(2)} | ${(b / t).toFixed(2)} | ${((b * g) / t).toFixed(0)} |${ofSgemm((b * g) / t)}`,
    );
  }
  if (tower === 'text') {
    console.log(
      `| 8 texts x 64 | ${results.text8.toFixed(2)} | ${(8 / results.text8).toFixed(2)} | ${(textGflop8 / results.text8).toFixed(0)} |${ofSgemm(textGflop8 / results.text8)}`,
    );
  }
  const build = tower === 'vision' ? visionBuild : textBuild;
  console.log(
    `${tower} tower build + fill ${build.toFixed(1)} s; peak RSS ${peakRssGiB().toFixed(2)} GiB`,
  );
  console.log(
    `load average at end: ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  );
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
