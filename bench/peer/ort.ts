/**
 * onnxruntime-node for the peer benchmarks (`npm run bench:peer`, `npm run bench:peer-gemm`), installed on first use
 * into `.tmp/peer`: it is not a dependency of the package (288 MB for every platform, and its install script downloads
 * CUDA libraries from nuget.org on Linux x64; `--ignore-scripts` keeps the CPU build it ships).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The part of onnxruntime-node's API used here (it is installed on first use, so its types are not at hand). */
export interface OrtTensor {
  readonly data: ArrayLike<number>;
  dispose(): void;
}
export interface OrtSession {
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}
export interface Ort {
  env: { versions: { node: string } };
  Tensor: new (type: string, data: Float32Array | BigInt64Array, dims: number[]) => OrtTensor;
  InferenceSession: {
    create(path: string, options: Record<string, unknown>): Promise<OrtSession>;
  };
}

/** The peer's version, pinned: figures in the README were measured with it. */
export const ORT_VERSION = '1.30.0';

/** onnxruntime-node from `.tmp/peer`, installed there first if it is not yet. */
export function loadOrt(): Ort {
  const prefix = fileURLToPath(new URL('../../../.tmp/peer', import.meta.url));
  const entry = join(prefix, 'node_modules', 'onnxruntime-node');
  if (!existsSync(join(entry, 'package.json'))) {
    console.log(`installing onnxruntime-node@${ORT_VERSION} into ${prefix} (first use) ...`);
    mkdirSync(prefix, { recursive: true });
    const r = spawnSync(
      'npm',
      [
        'install',
        '--prefix',
        prefix,
        '--ignore-scripts',
        '--no-save',
        '--no-audit',
        '--no-fund',
        `onnxruntime-node@${ORT_VERSION}`,
      ],
      { stdio: 'inherit' },
    );
    if (r.status !== 0) {
      throw new Error(
        `bench:peer: installing onnxruntime-node@${ORT_VERSION} into ${prefix} failed (npm exit ${r.status})`,
      );
    }
  }
  return createRequire(import.meta.url)(entry) as Ort;
}
