/**
 * Multi-threaded tfjs-backend-wasm in Node.js.
 *
 * tfjs-backend-wasm 4.22 never uses threads under Node: its WASM_HAS_MULTITHREAD_SUPPORT flag is false there, the
 * pthread workers it would start are `blob:` URLs (Node's Worker only takes files), and the C++ side sizes its
 * thread pool from emscripten_num_logical_cores() / 2 (capped at 4), which is 1 on a 2-core machine whatever
 * setThreadsCount() asks for. Here the threaded SIMD build is instantiated directly with real file paths for the
 * worker and main script, and the logical core count it reads (os.cpus().length under Node) is raised to
 * 2 x threads while it starts. The result is registered as the regular 'wasm' backend, so all of the package's
 * wasm kernels apply.
 */
import * as tf from '@tensorflow/tfjs';
import { BackendWasm, setThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { createHash } from 'node:crypto';
import { existsSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname, join } from 'node:path';
import {
  type EmscriptenModule,
  WASM_THREADED_SIMD,
  wasmWorkerSource,
  withLogicalCores,
  wrapThreadedWasmModule,
} from '../internals/tfjs.js';

const require = createRequire(import.meta.url);

type Factory = (config: Record<string, unknown>) => Promise<EmscriptenModule>;
type WasmModule = ConstructorParameters<typeof BackendWasm>[0];

function wasmOutDir(): string {
  return join(
    dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')),
    WASM_THREADED_SIMD.folder,
  );
}

/** Writes the pthread worker script shipped inside the package (as a string) to a real .cjs file once. */
function workerFile(dir: string): string {
  const source = wasmWorkerSource(require, join(dir, WASM_THREADED_SIMD.worker));
  const hash = createHash('sha256').update(source).digest('hex').slice(0, 16);
  const file = join(os.tmpdir(), `siglip2-tfjs-wasm-worker-${hash}.cjs`);
  if (!existsSync(file)) {
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, source);
    renameSync(tmp, file);
  }
  return file;
}

async function createThreadedBackend(threads: number): Promise<BackendWasm> {
  const dir = wasmOutDir();
  const mainScript = join(dir, WASM_THREADED_SIMD.script);
  const factory = require(mainScript) as Factory;
  const worker = workerFile(dir);
  setThreadsCount(threads);
  return withLogicalCores(os, 2 * threads, async () => {
    const module = await factory({
      locateFile: (path: string) => (path.endsWith('.worker.js') ? worker : join(dir, path)),
      mainScriptUrlOrBlob: mainScript,
    });
    return new BackendWasm(wrapThreadedWasmModule<WasmModule>(module));
  });
}

/**
 * Replaces the registered 'wasm' backend by one running `threads` threads (threaded SIMD build). With
 * threads <= 1 the package's own single-threaded registration is restored. Tensors held on a previous wasm
 * backend instance become invalid.
 */
export function registerNodeWasm(threads: number): void {
  if (tf.findBackendFactory('wasm') !== null) tf.removeBackend('wasm');
  if (threads <= 1) {
    tf.registerBackend('wasm', createSingleThreadedBackend, 2);
  } else {
    tf.registerBackend('wasm', () => createThreadedBackend(threads), 2);
  }
}

let stockFactory: (() => BackendWasm | Promise<BackendWasm>) | undefined;

/** Captures the package's own 'wasm' factory (registered when the package is imported) before replacing it. */
export function captureStockWasmFactory(): void {
  if (stockFactory !== undefined) return;
  const f = tf.findBackendFactory('wasm');
  if (f === null) throw new Error('@tensorflow/tfjs-backend-wasm did not register a wasm backend');
  stockFactory = f as () => BackendWasm | Promise<BackendWasm>;
}

async function createSingleThreadedBackend(): Promise<BackendWasm> {
  if (stockFactory === undefined) throw new Error('captureStockWasmFactory() was not called');
  setThreadsCount(1);
  return stockFactory();
}
