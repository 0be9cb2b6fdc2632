/**
 * Full-size models with random weights on each backend available here: images/s at batch 1 and 8, texts/s
 * (8 texts x 64 tokens), build time (random weights) and peak RSS. Each (model, backend) runs in its own child
 * process so that peak RSS is its own. The load average (os.loadavg, 1 min) is printed with every figure: the
 * machine may be shared.
 *   npm run bench:models -- [--models base,so400m] [--configs wasm1,wasm2,webgpu,cpu] [--batch8]
 * Defaults: base and so400m on wasm with 1 and 2 threads; webgpu (lavapipe, CPU emulation: slow) on base only,
 * batch 1; cpu is skipped (plain JS, about 1 GFLOP/s: a base image takes about 35 s) unless asked for.
 */
import * as tf from '@tensorflow/tfjs';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { type BackendName, useBackend } from '../src/backends/index.js';
import { parseConfig } from '../src/model/config.js';
import { SiglipModel, disposeOutputs } from '../src/model/siglip_model.js';

const MODELS: Record<string, string> = {
  base: 'siglip2-base-patch16-224',
  so400m: 'siglip2-so400m-patch16-256',
};

interface Result {
  model: string;
  config: string;
  backend: string;
  buildS: number;
  img1: number;
  img8?: number;
  texts: number;
  peakRssMiB: number;
  load: string;
}

function fixturesDir(): string {
  return (
    process.env.SIGLIP2_FIXTURES ??
    fileURLToPath(new URL('../../../shared/fixtures', import.meta.url))
  );
}

const load = () => os.loadavg()[0].toFixed(1);

async function timeIt(fn: () => Promise<void>, reps: number): Promise<number> {
  await fn(); // warm-up (shader compilation, wasm kernels)
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) await fn();
  return (performance.now() - t0) / 1000 / reps;
}

async function one(modelKey: string, config: string, batch8: boolean): Promise<Result> {
  const backend: BackendName = config.startsWith('wasm') ? 'wasm' : (config as BackendName);
  const threads = config === 'wasm1' ? 1 : config === 'wasm2' ? 2 : undefined;
  const report = await useBackend(backend, { threads });
  tf.enableProdMode();
  const json = JSON.parse(
    readFileSync(`${fixturesDir()}/full_size_configs/${MODELS[modelKey]}/config.json`, 'utf8'),
  ) as unknown;
  const cfg = parseConfig(json, MODELS[modelKey]);
  const t0 = performance.now();
  const model = SiglipModel.build(cfg, { weightInit: 'random' });
  const buildS = (performance.now() - t0) / 1000;
  const size = (cfg.visionConfig as { imageSize: number }).imageSize;
  const images = async (b: number) => {
    const px = tf.randomUniform([b, 3, size, size], -1, 1);
    const out = model.forward({ pixelValues: px });
    await out.imageEmbeds!.data();
    disposeOutputs(out);
    px.dispose();
  };
  const L = cfg.textConfig!.maxPositionEmbeddings;
  const texts = async () => {
    const ids = tf.randomUniform([8, L], 0, cfg.textConfig!.vocabSize, 'int32');
    const out = model.forward({ inputIds: ids });
    await out.textEmbeds!.data();
    disposeOutputs(out);
    ids.dispose();
  };
  const img1 = 1 / (await timeIt(() => images(1), 2));
  const img8 = batch8 ? 8 / (await timeIt(() => images(8), 1)) : undefined;
  const txt = 8 / (await timeIt(texts, 2));
  model.dispose();
  return {
    model: MODELS[modelKey],
    config,
    backend: report.reason,
    buildS,
    img1,
    img8,
    texts: txt,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
    load: load(),
  };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const arg = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  if (args[0] === '--one') {
    const r = await one(args[1], args[2], args[3] === 'batch8');
    console.log(`RESULT ${JSON.stringify(r)}`);
    process.exit(0);
  }
  const models = (arg('--models') ?? 'base,so400m').split(',');
  const configs = (arg('--configs') ?? 'wasm1,wasm2,webgpu').split(',');
  const rows: string[] = [];
  const header =
    '| model | backend | build (s) | images/s b1 | images/s b8 | texts/s (8x64) | peak RSS (MiB) | load avg |';
  console.log(header);
  console.log('|---|---|---|---|---|---|---|---|');
  for (const m of models) {
    for (const c of configs) {
      if (c === 'webgpu' && m !== 'base' && !args.includes('--all')) continue;
      const batch8 = c !== 'webgpu' || args.includes('--batch8');
      const before = load();
      let line: string;
      try {
        const out = execFileSync(
          process.execPath,
          [fileURLToPath(import.meta.url), '--one', m, c, batch8 ? 'batch8' : ''],
          {
            encoding: 'utf8',
            stdio: ['ignore', 'pipe', 'pipe'],
            maxBuffer: 1 << 26,
          },
        );
        const r = JSON.parse(
          out
            .split('\n')
            .find((l) => l.startsWith('RESULT '))!
            .slice(7),
        ) as Result;
        line = `| ${r.model} | ${c} | ${r.buildS.toFixed(1)} | ${r.img1.toFixed(2)} | ${r.img8?.toFixed(2) ?? '-'} | ${r.texts.toFixed(2)} | ${r.peakRssMiB.toFixed(0)} | ${before} → ${r.load} |`;
      } catch (e) {
        line = `| ${MODELS[m]} | ${c} | failed: ${(e as Error).message.split('\n')[0]} | | | | | ${before} |`;
      }
      console.log(line);
      rows.push(line);
    }
  }
  process.exit(0);
}

void main();
