/**
 * The peer's side of a tower benchmark: the tower's ONNX graph (written once into the OS temp folder,
 * `siglip2-peer/`), an onnxruntime session on it, and the inputs of the workloads `npm run bench` runs.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SiglipConfig } from '../../src/model/config.js';
import type { Ort, OrtSession, OrtTensor } from './ort.js';
import { TEXTS, TOKENS, benchImageSize, benchTokenIds } from '../workloads.js';
import { writeTextTower, writeVisionTower } from './siglip_onnx.js';

/** The folder the peer benchmarks keep their graphs and profiles in (`siglip2-peer/` in the OS temp folder). */
export function peerCacheDir(sub = ''): string {
  const dir = join(tmpdir(), 'siglip2-peer', sub);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** The graph of `dir`'s tower, written first if it is not in the cache yet; returns its path. */
export function peerGraph(dir: string, config: SiglipConfig, tower: 'vision' | 'text'): string {
  const base = join(peerCacheDir(), `${dir}-${tower}`);
  const modelPath = `${base}.onnx`;
  if (!existsSync(modelPath)) {
    const t0 = performance.now();
    if (tower === 'vision') writeVisionTower(`${base}.weights`, modelPath, config.visionConfig!);
    else writeTextTower(`${base}.weights`, modelPath, config.textConfig!, TOKENS);
    console.log(`wrote ${modelPath} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  return modelPath;
}

/**
 * A session as the peer benchmarks run it: `threads` intra-op threads, sequential, every graph optimisation; with
 * `profilePrefix`, onnxruntime profiles every node and writes `<profilePrefix>_<date>.json` when it is released.
 */
export function peerSession(
  ort: Ort,
  modelPath: string,
  threads: number,
  profilePrefix?: string,
): Promise<OrtSession> {
  return ort.InferenceSession.create(modelPath, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    ...(profilePrefix === undefined
      ? {}
      : { enableProfiling: true, profileFilePrefix: profilePrefix }),
  });
}

/** Where `bench:peer --profile` asks onnxruntime to write its traces. */
export function peerProfilePrefix(): string {
  return join(peerCacheDir('profiles'), 'profile');
}

/** `batch` images (deterministic pixels), or with `text` 8 texts of 64 token ids. */
export function peerFeeds(
  ort: Ort,
  config: SiglipConfig,
  tower: 'vision' | 'text',
  batch: number,
): Record<string, OrtTensor> {
  if (tower === 'text') {
    const ids = BigInt64Array.from(benchTokenIds(config), (id) => BigInt(id));
    return { input_ids: new ort.Tensor('int64', ids, [TEXTS, TOKENS]) };
  }
  const size = benchImageSize(config);
  const data = Float32Array.from({ length: batch * 3 * size * size }, (_, i) => Math.sin(i) * 0.9);
  return { pixel_values: new ort.Tensor('float32', data, [batch, 3, size, size]) };
}
