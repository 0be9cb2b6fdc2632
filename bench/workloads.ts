/** What the model benchmarks run and how much arithmetic it is: shared by `npm run bench` and `npm run bench:peer`. */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseConfig, type SiglipConfig } from '../src/model/config.js';

/** `--model` names and the full-size configs (under the fixtures' `full_size_configs/`) they stand for. */
export const MODELS: Record<string, string> = {
  so400m: 'siglip2-so400m-patch16-256',
  base: 'siglip2-base-patch16-224',
};

/** Multiply-add FLOPs (x2) of a transformer stack over `n` tokens: projections, attention, MLP. */
export function encoderGflop(d: number, inter: number, layers: number, n: number): number {
  const perLayer = 8 * d * d * n + 4 * n * n * d + 4 * d * inter * n;
  return (perLayer * layers) / 1e9;
}

/** The fixtures folder (`SIGLIP2_FIXTURES`, else `../shared/fixtures` beside the repository). */
const FIXTURES =
  process.env.SIGLIP2_FIXTURES ?? new URL('../../../shared/fixtures', import.meta.url).pathname;

/** The full-size config a `--model` name stands for, parsed, with its folder name. */
export function fullSizeConfig(modelName: string): { dir: string; config: SiglipConfig } {
  const dir = MODELS[modelName];
  if (!dir) throw new Error(`--model ${modelName}: expected ${Object.keys(MODELS).join(', ')}`);
  const path = `${FIXTURES}/full_size_configs/${dir}/config.json`;
  return { dir, config: parseConfig(JSON.parse(readFileSync(path, 'utf8'))) };
}

/** Texts per text-tower workload, and tokens per text. */
export const TEXTS = 8;
export const TOKENS = 64;

/** The side of the images the vision workloads feed: the config's for fixed resolution, 256 for NaFlex. */
export function benchImageSize(config: SiglipConfig): number {
  const vc = config.visionConfig!;
  return vc.modelType === 'siglip_vision_model' ? vc.imageSize : 256;
}

/** GFLOP of one image: the encoder plus the patch embedding (the head and the lookups are negligible). */
export function imageGflop(config: SiglipConfig): number {
  const vc = config.visionConfig!;
  const patches = (benchImageSize(config) / vc.patchSize) ** 2;
  return (
    encoderGflop(vc.hiddenSize, vc.intermediateSize, vc.numHiddenLayers, patches) +
    (2 * patches * 3 * vc.patchSize ** 2 * vc.hiddenSize) / 1e9
  );
}

/** GFLOP of the text workload: TEXTS texts of TOKENS tokens through the encoder. */
export function textsGflop(config: SiglipConfig): number {
  const tc = config.textConfig!;
  return TEXTS * encoderGflop(tc.hiddenSize, tc.intermediateSize, tc.numHiddenLayers, TOKENS);
}

/** The token ids of the text workload, `[TEXTS * TOKENS]` row by row (spread over the vocabulary). */
export function benchTokenIds(config: SiglipConfig): Int32Array {
  const vocab = config.textConfig!.vocabSize;
  return Int32Array.from({ length: TEXTS * TOKENS }, (_, i) => (i * 7919) % vocab);
}

/**
 * A tower's child's arguments: the caller's, less its own `--tower` (a child that read `--tower both` first would
 * spawn children of its own, without end), then `--tower <tower>`.
 */
export function towerChildArgs(args: string[], tower: string): string[] {
  const rest = args.filter((a, i) => a !== '--tower' && args[i - 1] !== '--tower');
  return [...rest, '--tower', tower];
}

/**
 * Runs the calling benchmark script once per tower, each in its own process (`--tower vision`, then `text`), with
 * the same arguments: a tower built after another may not find room (wasm's heap never shrinks), and peak RSS is
 * per tower. Throws naming the tower whose run failed.
 */
export function eachTowerInItsOwnProcess(scriptUrl: string, what: string): void {
  for (const t of ['vision', 'text']) {
    const r = spawnSync(
      process.execPath,
      [fileURLToPath(scriptUrl), ...towerChildArgs(process.argv.slice(2), t)],
      {
        stdio: 'inherit',
      },
    );
    if (r.status !== 0) throw new Error(`the ${t} tower ${what} failed (exit ${r.status})`);
  }
}
