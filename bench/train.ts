// Times one training step (forward + backward + AdamW update) at batch 8 on the wasm backend, random weights,
// and reports the peak resident memory (maxRSS, which includes the wasm heap).
//
//   node dist/bench/train.js <config-folder> <mode> [--batch 8] [--backend wasm|native] [--threads N] [--steps 2]
//                            [--no-checkpointing] [--profile | --profile-shapes] [--layers N]
// stepSeconds is the mean of the steps after the first. --profile runs one more step under tf.profile and prints
// the kernels holding its time (--profile-shapes: each kernel's input shapes apart, matMuls with their GFLOP/s);
// --layers N keeps the first N encoder layers of each tower (a quicker profile).
// modes: full        both towers, every weight trained (AdamW state for all)
//        full-frozen-tokens   both towers, token embedding frozen
//        vision-lora  vision tower only (text embeddings fixed random), LoRA rank 16 on all projections
//        text-lora    text tower only (image embeddings fixed random), LoRA rank 16, token table frozen
//        vision       vision tower only, every vision weight trained
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import '@tensorflow/tfjs-backend-wasm';
import { type BackendName, useBackend } from '../src/backends/index.js';
import { readConfig } from '../src/model/load_hf.js';
import { SiglipModel } from '../src/model/siglip_model.js';
import { sigmoidLoss } from '../src/train/loss.js';
import { LoraAdapters } from '../src/train/lora.js';
import { trainableParams } from '../src/train/freeze.js';
import { Trainer } from '../src/train/trainer.js';
import type { PairBatch } from '../src/train/forward.js';
import { kernelProfile, profileFlags } from './kernel_profile.js';

function fixedLogitsLoss(embeds: tf.Tensor, other: tf.Tensor): tf.Scalar {
  const a = embeds.div(tf.norm(embeds, 'euclidean', -1, true));
  return sigmoidLoss(tf.matMul(other, a, false, true).mul(10).sub(10));
}

const USAGE =
  'usage: node dist/bench/train.js <config-folder> <mode> [--batch 8] [--backend wasm|native] [--threads N] ' +
  '[--steps 2] [--no-checkpointing] [--profile | --profile-shapes] [--layers N]; modes: full, full-frozen-tokens, vision-lora, ' +
  'text-lora, vision';

async function main(): Promise<void> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    console.log(USAGE);
    return;
  }
  const [dir, mode = 'full'] = process.argv.slice(2);
  if (dir === undefined || dir.startsWith('--')) throw new Error(USAGE);
  const arg = (n: string, d: string) => {
    const i = process.argv.indexOf(n);
    return i >= 0 ? process.argv[i + 1] : d;
  };
  const batch = Number(arg('--batch', '8'));
  const steps = Math.max(2, Number(arg('--steps', '2')));
  const backend = arg('--backend', 'wasm');
  const gradientCheckpointing = !process.argv.includes('--no-checkpointing');
  // useBackend: webgpu in Node needs Dawn set up first (and lavapipe without a GPU).
  const threads = process.argv.includes('--threads') ? Number(arg('--threads', '0')) : undefined;
  const report = await useBackend(backend as BackendName, { threads });
  console.error(report.reason);
  tf.enableProdMode();
  const full = await readConfig(dir);
  const layers = process.argv.includes('--layers') ? Number(arg('--layers', '0')) : undefined;
  if (layers !== undefined && !(Number.isInteger(layers) && layers >= 1)) {
    throw new Error(`--layers must be a positive integer, got ${arg('--layers', '')}`);
  }
  const config =
    layers === undefined
      ? full
      : {
          ...full,
          visionConfig: full.visionConfig && { ...full.visionConfig, numHiddenLayers: layers },
          textConfig: full.textConfig && { ...full.textConfig, numHiddenLayers: layers },
        };
  const towers = mode.startsWith('vision') ? 'vision' : mode.startsWith('text') ? 'text' : 'both';
  const tb = performance.now();
  const model = SiglipModel.build(config, { weightInit: 'random', towers });
  const buildS = (performance.now() - tb) / 1000;
  const v = config.visionConfig;
  const t = config.textConfig;
  if (!v || !t || v.modelType !== 'siglip_vision_model')
    throw new Error('a fixed-resolution SigLIP config is needed');
  const pixelValues = tf.randomUniform([batch, 3, v.imageSize, v.imageSize], -1, 1);
  const inputIds = tf.randomUniform([batch, t.maxPositionEmbeddings], 0, t.vocabSize, 'int32');
  const b: PairBatch = { pixelValues, inputIds };
  const dim = v.hiddenSize;
  const other = tf.tidy(() => {
    const r = tf.randomNormal([batch, dim]);
    return r.div(tf.norm(r, 'euclidean', -1, true));
  });
  let lora: LoraAdapters | undefined;
  let trainer: Trainer;
  if (mode === 'vision-lora' || mode === 'text-lora') {
    lora = LoraAdapters.attach(model, {
      rank: 16,
      towers: [towers as 'vision' | 'text'],
      scope: 'all',
    });
    trainer = new Trainer(model, {
      gradientCheckpointing,
      params: lora.params,
      lossFn: (m, x) =>
        tf.tidy(() => {
          const out =
            towers === 'vision'
              ? (m.vision?.model.apply(x.pixelValues, { training: true }) as tf.Tensor[])
              : (m.text?.model.apply(x.inputIds, { training: true }) as tf.Tensor[]);
          return fixedLogitsLoss(out[1], other);
        }),
    });
  } else if (mode === 'vision') {
    trainer = new Trainer(model, {
      gradientCheckpointing,
      params: trainableParams(model),
      lossFn: (m, x) =>
        tf.tidy(() =>
          fixedLogitsLoss(
            (m.vision?.model.apply(x.pixelValues, { training: true }) as tf.Tensor[])[1],
            other,
          ),
        ),
    });
  } else {
    trainer = new Trainer(model, {
      gradientCheckpointing,
      freeze: mode === 'full-frozen-tokens' ? { match: /^text:embeddings\/token_embedding/ } : {},
    });
  }
  const trainable = trainer.params.reduce(
    (n, p) => n + (p.variable.shape as number[]).reduce((a, c) => a * c, 1),
    0,
  );
  // The wasm heap only grows: its size after a step is the step's peak inside wasm.
  const wasmHeapGiB = () =>
    backend === 'wasm'
      ? +(
          ((tf.backend() as BackendWasm).wasm as unknown as { HEAPU8: Uint8Array }).HEAPU8.length /
          2 ** 30
        ).toFixed(2)
      : undefined;
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    const r = await trainer.step(b);
    times.push((performance.now() - t0) / 1000);
    if (!Number.isFinite(r.loss)) throw new Error(`loss ${r.loss}`);
    if (process.env.SIGLIP2_BENCH_VERBOSE)
      console.error(`step ${i}: ${times[i].toFixed(2)} s, wasm heap ${wasmHeapGiB()} GiB`);
  }
  const maxRssGiB = process.resourceUsage().maxRSS / 1024 / 1024;
  const { profile, byShape } = profileFlags();
  if (profile) {
    await kernelProfile(
      'one more step',
      async () => {
        await trainer.step(b);
        return [];
      },
      byShape ? 30 : 16,
      byShape,
    );
  }
  console.log(
    JSON.stringify({
      config: dir,
      mode,
      backend,
      batch,
      gradientCheckpointing,
      trainableParams: trainable,
      buildSeconds: +buildS.toFixed(1),
      firstStepSeconds: +times[0].toFixed(3),
      stepSeconds: +(times.slice(1).reduce((a, b) => a + b, 0) / (steps - 1)).toFixed(3),
      steps,
      layers,
      peakRssGiB: +maxRssGiB.toFixed(2),
      wasmHeapGiB: wasmHeapGiB(),
      tfBytesGiB: +(tf.memory().numBytes / 2 ** 30).toFixed(2),
    }),
  );
}

// exit(0): Dawn (webgpu in Node) keeps the event loop alive. An error is printed here: uncaught, it would go through
// the wasm module's exception handler, which prints its whole minified source line.
main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e instanceof Error ? `${e.name}: ${e.message}` : e);
    process.exit(1);
  },
);
