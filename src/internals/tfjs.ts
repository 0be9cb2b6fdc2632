/**
 * Every use of TF.js API that is not public (engine state and tape, here and in `./tape.ts`, `runKernelFunc`, the wasm backend's heap and
 * its emscripten module, the package's file layout, the `os.cpus` patch for wasm threads in Node, the cpu
 * backend's banner flag) lives here and nowhere else. Such API can change in any release, so this module checks
 * at import that TF.js is the version it was tested with, and fails with a message saying so otherwise
 * (SIGLIP2_ALLOW_UNTESTED_TFJS=1 turns the failure into a warning, at the user's risk).
 *
 * Browser-safe: nothing here imports a Node module (the Node-only helpers take what they need as arguments).
 */
import * as tf from '@tensorflow/tfjs';
import type * as NodeOs from 'node:os';
import { releasingGradients } from './tape.js';

/** The TF.js release every package of `@tensorflow/*` must be (package.json pins it exactly). */
export const TESTED_TFJS_VERSION = '4.22.0';

/** Set to 1 to run on another TF.js version anyway (a warning instead of an error). */
export const ALLOW_UNTESTED_TFJS_ENV = 'SIGLIP2_ALLOW_UNTESTED_TFJS';

function allowUntested(): boolean {
  return (
    typeof process !== 'undefined' &&
    typeof process.env === 'object' &&
    process.env[ALLOW_UNTESTED_TFJS_ENV] === '1'
  );
}

/**
 * Throws unless every package in `versions` (name -> version) is TESTED_TFJS_VERSION. The message names each
 * package at another version and how to fix it. With `allow` it warns (once per call) instead.
 */
export function assertTestedTfjs(
  versions: Record<string, string | undefined>,
  allow: boolean = allowUntested(),
): void {
  const wrong = Object.entries(versions).filter(([, v]) => v !== TESTED_TFJS_VERSION);
  if (wrong.length === 0) return;
  const message =
    `siglip2-tfjs was tested with TensorFlow.js ${TESTED_TFJS_VERSION} and uses parts of it that are not public ` +
    `API, but found ${wrong.map(([n, v]) => `${n} ${v ?? '(unknown version)'}`).join(', ')}. Install ` +
    `exactly ${TESTED_TFJS_VERSION} of every @tensorflow package (as this package's dependencies pin it), or set ` +
    `${ALLOW_UNTESTED_TFJS_ENV}=1 to run anyway at your own risk.`;
  if (!allow) throw new Error(message);
  console.warn(`warning: ${message}`);
}

assertTestedTfjs(
  Object.fromEntries(Object.entries(tf.version).map(([k, v]) => [`@tensorflow/${k}`, v])),
);

// ---------------------------------------------------------------------------------------------------------------
// Engine: tape, gradient state, kernel functions with a hand-written gradient.

type SaveFn = (tensors: tf.Tensor[]) => void;

/** The parts of TF.js's Engine (tfjs-core engine.ts) used here; private in the typings or undocumented. */
interface EngineInternals {
  state: { gradientDepth: number; numBytes: number; activeTape: unknown };
  isTapeOn(): boolean;
  gradients<T extends tf.Tensor>(
    f: () => T,
    xs: tf.Tensor[],
    dy?: T,
    allowNoGradients?: boolean,
  ): { value: T; grads: tf.Tensor[] };
  runKernelFunc(params: {
    forwardFunc: (backend: unknown, save: SaveFn) => tf.Tensor;
    backwardsFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => Record<string, () => tf.Tensor>;
    inputs: tf.NamedTensorMap;
  }): tf.Tensor;
  registry?: Record<string, unknown>;
  registryFactory?: Record<string, { factory: () => unknown; priority: number } | undefined>;
}

function engine(): EngineInternals {
  return tf.engine() as unknown as EngineInternals;
}

export { releasingGradients };

/** Whether a gradient is being recorded right now (inside `tf.grad`, `tf.variableGrads`, ...). */
export function recordingGradients(): boolean {
  return engine().state.gradientDepth > 0;
}

/** Whether the gradient tape records ops now (false outside a gradient computation and inside a kernel). */
export function tapeIsOn(): boolean {
  return engine().isTapeOn();
}

/** Bytes held by all live tensors (the engine's running count; no backend query). */
export function liveTensorBytes(): number {
  return engine().state.numBytes;
}

/**
 * The gradients of `f()` with respect to `xs`, seeded with `dy`, computed on a nested tape from inside a backward
 * pass. TF.js replaces the engine's tape for the nested computation and clears it when done; the outer backward
 * pass still needs its own tape afterwards (to release what it saved), so it is put back. A gradient `f` does not
 * reach comes back `null`.
 */
export function nestedGradients(
  f: () => tf.Tensor,
  xs: tf.Tensor[],
  dy: tf.Tensor,
): { value: tf.Tensor; grads: (tf.Tensor | null)[] } {
  const e = engine();
  const outerTape = e.state.activeTape;
  try {
    return releasingGradients(f, xs, dy, true);
  } finally {
    e.state.activeTape = outerTape;
  }
}

/** Runs a registered kernel by name on the active backend (for kernels with no tf.* op, e.g. a backend's fused ones). */
export function runKernel(
  name: string,
  inputs: tf.NamedTensorMap,
  attrs: tf.NamedAttrMap,
): tf.Tensor | tf.Tensor[] {
  return tf.engine().runKernel(name, inputs, attrs) as tf.Tensor | tf.Tensor[];
}

/**
 * Runs `forward` (tape off) as one recorded op whose gradient per input is `backward(...)[input]()`, called only
 * for inputs on the path to what is differentiated. What `forward` passes to `save` reaches `backward`. This is
 * what `tf.customGrad` is built on, minus its eager gradient of every input.
 */
export function runKernelFunc(
  inputs: tf.NamedTensorMap,
  forward: (save: SaveFn) => tf.Tensor,
  backward: (dy: tf.Tensor, saved: tf.Tensor[]) => Record<string, () => tf.Tensor>,
): tf.Tensor {
  return engine().runKernelFunc({
    forwardFunc: (_backend, save) => forward(save),
    backwardsFunc: backward,
    inputs,
  });
}

// ---------------------------------------------------------------------------------------------------------------
// The cpu backend's Node.js banner.

/**
 * Stops the cpu backend from printing "Hi, looks like you are running TensorFlow.js in Node.js ... install our
 * node backend" on its first tensor in Node: advice that is wrong for this library, whose fast Node path is its
 * own. Only that banner: TF.js's other warnings stay (unlike `tf.enableProdMode()`). The backend prints it when its
 * private `firstUse` flag is set, so the registered factory clears the flag on every instance it makes.
 */
export function silenceCpuBackendBanner(): void {
  const clear = (b: unknown) => {
    if (b !== null && typeof b === 'object' && 'firstUse' in b) {
      (b as { firstUse: boolean }).firstUse = false;
    }
    return b;
  };
  // The registry, not tf.findBackend(), which would initialize the backend to return it.
  const live = engine().registry?.cpu;
  if (live) clear(live);
  const entry = engine().registryFactory?.cpu;
  if (!entry || (entry.factory as { silenced?: boolean }).silenced) return;
  const original = entry.factory;
  const factory = () => {
    const b = original();
    return b instanceof Promise ? b.then(clear) : clear(b);
  };
  (factory as { silenced?: boolean }).silenced = true;
  entry.factory = factory;
}

silenceCpuBackendBanner();

// ---------------------------------------------------------------------------------------------------------------
// tfjs-backend-wasm: the backend object our kernels run on, and the threaded build in Node.

/** The parts of tfjs-backend-wasm's BackendWasm used here. */
interface BackendWasmInternals {
  readSync(dataId: object): ArrayLike<number>;
  incRef(dataId: object): void;
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

/** What a kernel of ours on the wasm backend does with the backend's heap. */
export interface WasmHeap {
  /** A new tensor of `shape` on the heap, for the kernel to fill (may grow, and so move, the heap). */
  output(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  /** A view of a tensor's values on the heap; take views after the last `output()` (see there). */
  view(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
  /** A copy of a tensor's values. */
  read(t: tf.TensorInfo): ArrayLike<number>;
  /** Counts one more reference to `t`'s buffer, for an output that shares it. */
  share(t: tf.TensorInfo): void;
}

/** The heap of the wasm backend a kernel function is called with (its `backend` argument). */
export function wasmHeap(backend: unknown): WasmHeap {
  const b = backend as BackendWasmInternals;
  return {
    output: (shape, dtype) => b.makeOutput(shape, dtype),
    view: (t) => b.typedArrayFromHeap(t),
    read: (t) => b.readSync(t.dataId),
    share: (t) => b.incRef(t.dataId),
  };
}

/** Files of tfjs-backend-wasm's threaded SIMD build, in the package's `wasm-out/` folder. */
export const WASM_THREADED_SIMD = {
  folder: 'wasm-out',
  script: 'tfjs-backend-wasm-threaded-simd.js',
  worker: 'tfjs-backend-wasm-threaded-simd.worker.js',
} as const;

/**
 * The pthread worker's source shipped inside the package as a string (`wasmWorkerContents` of the worker module,
 * loaded with `load`), made fit for a real .cjs file: the package escapes nothing, so a "\n" inside a JS string
 * literal in the worker would become a real newline.
 */
export function wasmWorkerSource(
  load: (path: string) => unknown,
  workerModulePath: string,
): string {
  const { wasmWorkerContents } = load(workerModulePath) as { wasmWorkerContents?: unknown };
  if (typeof wasmWorkerContents !== 'string') {
    throw new Error(
      `${workerModulePath} has no wasmWorkerContents string (TF.js ${tf.version_core})`,
    );
  }
  return wasmWorkerContents.replace(/\n/g, '\\n');
}

/** The emscripten module of the threaded build, as far as it is used here. */
export interface EmscriptenModule {
  cwrap(name: string, ret: string | null, args: string[]): (...args: number[]) => number;
}

/**
 * Attaches to an instantiated threaded wasm module the C functions BackendWasm calls (`module.tfjs`, which the
 * package's own loader sets up), so `new BackendWasm(wrapThreadedWasmModule(m))` works.
 */
export function wrapThreadedWasmModule<M>(module: EmscriptenModule): M {
  const wrapped = module as EmscriptenModule & { tfjs?: Record<string, unknown> };
  wrapped.tfjs = {
    init: module.cwrap('init', null, []),
    initWithThreadsCount: module.cwrap('init_with_threads_count', null, ['number']),
    getThreadsCount: module.cwrap('get_threads_count', 'number', []),
    registerTensor: module.cwrap('register_tensor', null, ['number', 'number', 'number']),
    disposeData: module.cwrap('dispose_data', null, ['number']),
    dispose: module.cwrap('dispose', null, []),
  };
  return wrapped as unknown as M;
}

/**
 * Runs `fn` while `os.cpus()` reports at least `count` logical cores: the wasm build sizes its thread pool from
 * emscripten_num_logical_cores() / 2, which reads os.cpus().length in Node. `os` is Node's `node:os` module
 * (passed in, so this module stays browser-safe). Calls must not overlap (the patch is process-wide).
 */
export async function withLogicalCores<T>(
  os: typeof NodeOs,
  count: number,
  fn: () => Promise<T>,
): Promise<T> {
  const original = os.cpus;
  os.cpus = () => {
    const real = original();
    if (real.length >= count || real.length === 0) return real;
    return Array.from({ length: count }, (_, i) => real[i % real.length]);
  };
  try {
    return await fn();
  } finally {
    os.cpus = original;
  }
}
