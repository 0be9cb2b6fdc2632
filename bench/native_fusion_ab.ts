/**
 * The native backend's inference fusions and GEMM library settings against each other, in one process with the
 * variants interleaved run by run (on a shared machine that cancels more noise than separate processes). Random
 * weights. By default: oneDNN only and unfused, fused, the measured choice (`auto`), both. With `--gemm a,b,...`
 * the variants are those SIGLIP2_NATIVE_GEMM settings (default, onednn, openblas, auto), all fused. With
 * `--layer-team` they are the default with each encoder layer's kernels in one parallel region (where every product
 * runs on OpenBLAS: native/src/encoder_layer.cc) and with a region per kernel (SIGLIP2_NATIVE_LAYER_TEAM=off).
 *
 *   node dist/bench/native_fusion_ab.js [--model base|so400m] [--tower vision|text] [--batch 1] [--rounds 6]
 *                                       [--gemm default,onednn | --layer-team]
 */
import * as tf from '@tensorflow/tfjs';
import { loadavg } from 'node:os';
import { useBackend } from '../src/backends/index.js';
import { NATIVE_GEMM_ENV } from '../src/backends/native/addon.js';
import { NATIVE_LAYER_OVERRIDES } from '../src/backends/native/ops.js';
import { setLayerKernelOverrides } from '../src/layers/kernels/overrides.js';
import { fullSizeConfig } from './workloads.js';
import { SiglipModel } from '../src/model/siglip_model.js';
import { disposeTowerOutputs } from '../src/model/tower_outputs.js';
import { fillRandom } from './random_weights.js';
import { arg, median } from './cli.js';

interface Variant {
  gemm: string;
  fused: boolean;
  /** each encoder layer in one parallel region where it can be (the default), or a region per kernel */
  team?: boolean;
}

const FUSION_VARIANTS: Record<string, Variant> = {
  'oneDNN only, unfused': { gemm: 'onednn', fused: false },
  'oneDNN only, fused': { gemm: 'onednn', fused: true },
  'GEMM choice, unfused': { gemm: 'auto', fused: false },
  'GEMM choice, fused': { gemm: 'auto', fused: true },
};

const TEAM_VARIANTS: Record<string, Variant> = {
  'a parallel region per kernel': { gemm: 'default', fused: true, team: false },
  'one parallel region per layer': { gemm: 'default', fused: true, team: true },
};

const TEAM_ENV = 'SIGLIP2_NATIVE_LAYER_TEAM';

async function main(): Promise<void> {
  const model = arg('model', 'base');
  const tower = arg('tower', 'vision') as 'vision' | 'text';
  const batch = Number(arg('batch', '1'));
  const rounds = Number(arg('rounds', '6'));
  const gemms = arg('gemm', '');
  const VARIANTS: Record<string, Variant> = process.argv.includes('--layer-team')
    ? TEAM_VARIANTS
    : gemms === ''
      ? FUSION_VARIANTS
      : Object.fromEntries(
          gemms.split(',').map((g) => [`${g}, fused`, { gemm: g, fused: true }] as const),
        );
  if (tower !== 'vision' && tower !== 'text')
    throw new Error(`--tower ${tower}: expected vision or text`);
  const report = await useBackend('native');
  const { dir, config } = fullSizeConfig(model);
  const m = SiglipModel.build(config, { weightInit: 'zeros', towers: tower });
  const vc = config.visionConfig;
  const size = vc !== undefined && vc.modelType === 'siglip_vision_model' ? vc.imageSize : 256;
  const input =
    tower === 'vision'
      ? tf.randomUniform([batch, 3, size, size], -1, 1)
      : tf.tensor2d(
          Int32Array.from({ length: batch * 64 }, (_, i) => (i * 7919) % 1000),
          [batch, 64],
          'int32',
        );
  const towerModel = tower === 'vision' ? m.vision : m.text;
  if (towerModel === undefined) throw new Error(`${model} has no ${tower} tower`);
  fillRandom(towerModel.model);
  const run = async () => {
    const o =
      tower === 'vision' ? m.vision!.predict({ pixelValues: input }) : m.text!.predict(input);
    await o.poolerOutput!.data();
    disposeTowerOutputs(o);
  };
  const use = (v: Variant) => {
    process.env[NATIVE_GEMM_ENV] = v.gemm;
    if (v.team === false) process.env[TEAM_ENV] = 'off';
    else delete process.env[TEAM_ENV];
    setLayerKernelOverrides(
      'native',
      // unfused: neither the fused linears nor the one-call encoder layer (which fuses the same ops)
      v.fused
        ? NATIVE_LAYER_OVERRIDES
        : { ...NATIVE_LAYER_OVERRIDES, fusedLinear: undefined, encoderLayer: undefined },
    );
  };
  // Warm-up: weights packed, every problem's GEMM choice made.
  for (let w = 0; w < 3; w++) {
    for (const v of Object.values(VARIANTS)) {
      use(v);
      await run();
    }
  }
  const times: Record<string, number[]> = {};
  for (let r = 0; r < rounds; r++) {
    for (const [name, v] of Object.entries(VARIANTS)) {
      use(v);
      const t0 = performance.now();
      await run();
      (times[name] ??= []).push((performance.now() - t0) / 1000);
    }
  }
  delete process.env[NATIVE_GEMM_ENV];
  delete process.env[TEAM_ENV];
  setLayerKernelOverrides('native', NATIVE_LAYER_OVERRIDES);
  const names = Object.keys(VARIANTS);
  const refName = names[0];
  const ref = median(times[refName]);
  console.log(
    `${dir} ${tower} tower, batch ${batch}, ${rounds} interleaved rounds; ${report.reason}`,
  );
  console.log(`load average at end: ${loadavg()[0].toFixed(1)}`);
  console.log(`| variant | median s | min s | speed-up over ${refName} |`);
  console.log('|---|---|---|---|');
  for (const [name, t] of Object.entries(times)) {
    console.log(
      `| ${name} | ${median(t).toFixed(3)} | ${Math.min(...t).toFixed(3)} | ${(ref / median(t)).toFixed(2)}x |`,
    );
  }
  input.dispose();
  m.dispose();
}

await main();
