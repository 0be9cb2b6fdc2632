// Benchmark: the so400m NaFlex vision tower (google/siglip2-so400m-patch16-naflex shapes, random weights) on the
// TF.js wasm backend, batch 1, at max_num_patches 256 (16x16 grid) and 1024 (32x32 grid).
// Usage: npm run build && npm run bench:naflex -- [--runs 2] [--patches 256,1024] [--backend wasm] [--threads n]
// (wasm threads default to all logical cores, through useBackend).
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BackendName, useBackend } from '../src/backends/index.js';
import { SiglipVisionModel, disposeTowerOutputs, parseConfig } from '../src/index.js';
import { arg } from './cli.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const FIXTURES = process.env.SIGLIP2_FIXTURES ?? resolve(ROOT, '../shared/fixtures');

/** The so400m NaFlex vision config (from the shared fixture when present, else the same numbers inline). */
function so400mNaflexConfig(): unknown {
  try {
    const path = resolve(FIXTURES, 'full_size_configs/siglip2-so400m-patch16-naflex/config.json');
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    const tower = {
      hidden_size: 1152,
      intermediate_size: 4304,
      num_attention_heads: 16,
      num_hidden_layers: 27,
    };
    return {
      model_type: 'siglip2',
      vision_config: { ...tower },
      text_config: { ...tower, vocab_size: 256000 },
    };
  }
}

/** A plausible (h, w) for a budget of patches: the largest square grid that fits. */
function gridFor(maxPatches: number): [number, number] {
  const side = Math.floor(Math.sqrt(maxPatches));
  return [side, side];
}

/** Approximate forward FLOPs of the tower for n tokens (matMuls only). */
function flops(n: number, d: number, inter: number, layers: number, patchDim: number): number {
  const perLayer = 2 * n * d * (4 * d) + 2 * 2 * n * n * d + 2 * 2 * n * d * inter;
  const head = 2 * n * d * 2 * d + 2 * 2 * n * d + 2 * d * d * 2 + 2 * 2 * d * inter;
  return 2 * n * patchDim * d + layers * perLayer + head;
}

async function main(): Promise<void> {
  const backend = arg('backend', 'wasm');
  const runs = Number(arg('runs', '2'));
  const budgets = arg('patches', '256,1024').split(',').map(Number);
  tf.enableProdMode();
  const threads = process.argv.includes('--threads') ? Number(arg('threads', '1')) : undefined;
  const report = await useBackend(backend as BackendName, { threads });

  const config = parseConfig(so400mNaflexConfig());
  const vc = config.visionConfig;
  if (!vc || vc.modelType !== 'siglip2_vision_model') throw new Error('not a NaFlex config');
  const t0 = performance.now();
  const vision = SiglipVisionModel.build(vc, { weightInit: 'random' });
  const buildS = (performance.now() - t0) / 1000;
  const params = vision.model.countParams();
  console.log(
    `so400m NaFlex vision tower: ${(params / 1e6).toFixed(1)}M parameters (random), built in ${buildS.toFixed(1)} s; ` +
      `${report.reason}, ${cpus().length} CPUs, Node ${process.version}`,
  );

  const patchDim = vc.numChannels * vc.patchSize * vc.patchSize;
  const rows: string[] = [];
  for (const maxPatches of budgets) {
    const [h, w] = gridFor(maxPatches);
    const pixelValues = tf.randomUniform([1, maxPatches, patchDim], -1, 1);
    const mask = Array.from({ length: maxPatches }, (_, j) => (j < h * w ? 1 : 0));
    const pixelAttentionMask = tf.tensor2d([mask], [1, maxPatches]);
    const spatialShapes = tf.tensor2d([[h, w]], [1, 2], 'int32');
    const times: number[] = [];
    for (let r = 0; r <= runs; r++) {
      const start = performance.now();
      const out = vision.predict({ pixelValues, pixelAttentionMask, spatialShapes });
      await (out.poolerOutput as tf.Tensor).data();
      const s = (performance.now() - start) / 1000;
      disposeTowerOutputs(out);
      if (r > 0) times.push(s); // the first run is a warm-up
      console.log(
        `  ${maxPatches} patches (${h}x${w}) ${r === 0 ? 'warm-up' : `run ${r}`}: ${s.toFixed(2)} s`,
      );
    }
    tf.dispose([pixelValues, pixelAttentionMask, spatialShapes]);
    const best = Math.min(...times);
    const mean = times.reduce((a, b) => a + b, 0) / times.length;
    const gflop =
      flops(maxPatches, vc.hiddenSize, vc.intermediateSize, vc.numHiddenLayers, patchDim) / 1e9;
    rows.push(
      `| ${maxPatches} | ${h}x${w} | ${mean.toFixed(2)} | ${(1 / mean).toFixed(3)} | ${(1 / best).toFixed(3)} | ` +
        `${gflop.toFixed(0)} | ${(gflop / mean).toFixed(1)} |`,
    );
  }
  console.log(
    `\n| max_num_patches | grid | s/image (mean of ${runs}) | images/s | images/s (best) | GFLOP/image | GFLOP/s |`,
  );
  console.log('|---|---|---|---|---|---|---|');
  for (const r of rows) console.log(r);
  vision.dispose();
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
