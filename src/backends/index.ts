/**
 * Backend selection for TF.js: cpu, wasm (multi-threaded in Node too), webgpu (browser, or Node through Dawn), and
 * the native 'tensorflow' backend from the optional @tensorflow/tfjs-node(-gpu) peers. Every backend package is
 * imported lazily, on first use.
 */
import * as tf from '@tensorflow/tfjs';
import { assertTestedTfjs } from '../internals/tfjs.js';
import { setAdapterBindingLimit } from './binding.js';
import { isNode } from './env.js';
import type { ModuleImporter } from './tensorflow.js';
import { BackendUnavailableError } from './unavailable.js';

export { MAX_BINDING_ENV, assertFitsBinding, bindingLimit, forceBindingLimit } from './binding.js';
export { DEFAULT_SHARD_BYTES, shardTable, shardedGather } from './sharded_gather.js';
export { TensorflowBackendUnavailable, loadTensorflowBackend } from './tensorflow.js';
export type { ModuleImporter } from './tensorflow.js';
export { BackendUnavailableError } from './unavailable.js';

export type BackendName = 'cpu' | 'wasm' | 'webgpu' | 'tensorflow' | 'native';

export interface AdapterInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** True for CPU emulation (lavapipe/llvmpipe, SwiftShader, fallback adapters): slower than wasm. */
  software: boolean;
}

export interface BackendReport {
  name: BackendName;
  /** One line: what was chosen and why. */
  reason: string;
  /** wasm and native: the threads the backend actually runs (wasm: counted from its running pthread workers). */
  threads?: number;
  /** webgpu: the adapter. */
  adapterInfo?: AdapterInfo;
  /** webgpu: the adapter limits that matter for big tensors (bytes). */
  limits?: { maxStorageBufferBindingSize: number; maxBufferSize: number };
}

export interface UseBackendOptions {
  /**
   * wasm and native threads (default: all logical cores). In a browser at most navigator.hardwareConcurrency (and 8), and 1
   * unless the page is cross-origin isolated. Applies when the wasm backend starts (the first time in a browser page).
   */
  threads?: number;
  /** Browser: where the tfjs-backend-wasm .wasm files are served (passed to setWasmPaths). */
  wasmPaths?: string;
  /** Loads optional packages (tfjs-node); for tests. */
  importer?: ModuleImporter;
}

const SOFTWARE_ADAPTER = /llvmpipe|lavapipe|swiftshader|software|basic render/i;

/** True when a WebGPU adapter is CPU emulation rather than a GPU. */
export function isSoftwareAdapter(
  info: Omit<AdapterInfo, 'software'>,
  isFallback = false,
): boolean {
  return (
    isFallback ||
    SOFTWARE_ADAPTER.test(`${info.vendor} ${info.architecture} ${info.device} ${info.description}`)
  );
}

interface WebGPUProbe {
  adapter: GPUAdapter;
  info: AdapterInfo;
  limits: { maxStorageBufferBindingSize: number; maxBufferSize: number };
  note: string;
}

/** Finds a WebGPU adapter (setting up Dawn under Node); a string says why there is none. */
async function probeWebGPU(): Promise<WebGPUProbe | string> {
  let gpu: GPU | undefined;
  let note = '';
  if (isNode()) {
    const { installNodeWebGPU } = await import('./webgpu_node.js');
    const installed = await installNodeWebGPU();
    if (installed === undefined) return "the optional npm package 'webgpu' (Dawn) is not installed";
    gpu = installed.gpu;
    note = `, Vulkan: ${installed.vulkan.reason}`;
  } else {
    gpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
    if (gpu === undefined) return 'navigator.gpu is missing (WebGPU not enabled in this browser)';
  }
  const adapter = await gpu.requestAdapter();
  if (adapter === null) {
    return `no WebGPU adapter${note}${isNode() ? ' (on a machine without a GPU run scripts/setup-vulkan.sh)' : ''}`;
  }
  const a = adapter.info;
  const base = {
    vendor: a.vendor,
    architecture: a.architecture,
    device: a.device,
    description: a.description,
  };
  const fallback = (a as { isFallbackAdapter?: boolean }).isFallbackAdapter ?? false;
  return {
    adapter,
    info: { ...base, software: isSoftwareAdapter(base, fallback) },
    limits: {
      maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
      maxBufferSize: adapter.limits.maxBufferSize,
    },
    note,
  };
}

function describeAdapter(info: AdapterInfo): string {
  const text = [info.vendor, info.architecture, info.device, info.description]
    .filter((s) => s)
    .join(' / ');
  return `${text || 'unnamed adapter'}${info.software ? ', software' : ''}`;
}

async function activate(name: BackendName): Promise<void> {
  const ok = await tf.setBackend(name);
  await tf.ready();
  if (!ok || tf.getBackend() !== name)
    throw new Error(`TF.js could not initialize the '${name}' backend`);
}

let nodeWasmThreads: number | undefined;

async function useWasm(opts: UseBackendOptions): Promise<BackendReport> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  // Our wasm kernels and the threaded Node build use the package's internals.
  assertTestedTfjs({ '@tensorflow/tfjs-backend-wasm': wasm.version_wasm });
  if (isNode()) {
    const os = await import('node:os');
    const cores = os.availableParallelism();
    const threads = opts.threads ?? cores;
    if (!Number.isInteger(threads) || threads < 1) {
      throw new Error(
        `useBackend('wasm'): threads must be a positive integer, got ${opts.threads}`,
      );
    }
    const { captureStockWasmFactory, registerNodeWasm } = await import('./wasm_node.js');
    captureStockWasmFactory();
    if (nodeWasmThreads !== threads) {
      registerNodeWasm(threads);
      nodeWasmThreads = threads;
    }
    await activate('wasm');
    const { runningWasmThreads } = await import('./wasm_browser.js');
    const actual = runningWasmThreads() ?? wasm.getThreadsCount();
    return {
      name: 'wasm',
      threads: actual,
      reason: `wasm (SIMD) with ${actual} thread${actual > 1 ? 's' : ''} (${opts.threads === undefined ? `default: ${cores} logical cores` : 'requested'})`,
    };
  }
  const { planBrowserWasm, runningWasmThreads, withHardwareConcurrency } =
    await import('./wasm_browser.js');
  const plan = planBrowserWasm(opts.threads);
  if (opts.wasmPaths !== undefined) wasm.setWasmPaths(opts.wasmPaths);
  wasm.setThreadsCount(plan.threads);
  await withHardwareConcurrency(2 * plan.threads, () => activate('wasm'));
  const actual = runningWasmThreads() ?? wasm.getThreadsCount();
  const why = plan.isolated
    ? `${opts.threads === undefined ? 'default: all' : `${opts.threads} requested of`} ${plan.cores} logical cores`
    : 'the page is not cross-origin isolated: serve it with COOP/COEP headers for threads';
  return {
    name: 'wasm',
    threads: actual,
    reason: `wasm with ${actual} thread${actual > 1 ? 's' : ''} (${why})`,
  };
}

async function useWebGPU(probe: WebGPUProbe | string): Promise<BackendReport> {
  if (typeof probe === 'string') throw new BackendUnavailableError('webgpu', probe);
  // Imported only now: the package registers its backend at import time, and only if navigator.gpu exists.
  await import('@tensorflow/tfjs-backend-webgpu');
  if (tf.findBackendFactory('webgpu') === null) {
    throw new Error(
      "useBackend('webgpu'): @tensorflow/tfjs-backend-webgpu was imported before navigator.gpu existed and did not " +
        'register its backend; do not import it before useBackend()',
    );
  }
  await activate('webgpu');
  setAdapterBindingLimit(probe.limits.maxStorageBufferBindingSize);
  const mib = (n: number) => `${Math.round(n / 2 ** 20)} MiB`;
  return {
    name: 'webgpu',
    adapterInfo: probe.info,
    limits: probe.limits,
    reason:
      `webgpu on ${describeAdapter(probe.info)} (binding limit ${mib(probe.limits.maxStorageBufferBindingSize)}, ` +
      `buffer limit ${mib(probe.limits.maxBufferSize)}${probe.note})`,
  };
}

async function useTensorflow(opts: UseBackendOptions): Promise<BackendReport> {
  if (!isNode()) {
    throw new BackendUnavailableError(
      'tensorflow',
      'the native TensorFlow backend only exists in Node.js',
    );
  }
  const { loadTensorflowBackend } = await import('./tensorflow.js');
  const pkg = await loadTensorflowBackend(opts.importer);
  await activate('tensorflow');
  return { name: 'tensorflow', reason: `tensorflow (native libtensorflow) from ${pkg}` };
}

/** Reason the native backend cannot run here, or its addon once registered. */
async function nativeAddon(): Promise<import('./native/index.js').NativeAddon | string> {
  if (!isNode()) return 'the native backend only exists in Node.js';
  const { registerNativeBackend } = await import('./native/index.js');
  return registerNativeBackend();
}

async function useNative(opts: UseBackendOptions): Promise<BackendReport> {
  const addon = await nativeAddon();
  if (typeof addon === 'string') throw new Error(`useBackend('native'): ${addon}`);
  const os = await import('node:os');
  const cores = os.availableParallelism();
  const threads = opts.threads ?? cores;
  const { setNativeThreads, openmpWaits, gemmPolicy } = await import('./native/index.js');
  const info = setNativeThreads(addon, threads);
  await activate('native');
  return {
    name: 'native',
    threads: info.threads,
    reason:
      `native: ${info.library} ${info.version} dispatching ${info.isa}, ${info.threads} thread${info.threads > 1 ? 's' : ''} ` +
      `(${info.threading}, ${opts.threads === undefined ? `default: ${cores} logical cores` : 'requested'}, idle threads wait: ${openmpWaits()}, ${gemmPolicy(info)}); ` +
      'the fastest CPU path',
  };
}

async function useAuto(opts: UseBackendOptions): Promise<BackendReport> {
  const skipped: string[] = [];
  if (isNode()) {
    try {
      const r = await useTensorflow(opts);
      return { ...r, reason: `auto: ${r.reason}` };
    } catch (e) {
      skipped.push(
        `tensorflow: ${e instanceof BackendUnavailableError ? e.why : (e as Error).message.split('\n')[0]}`,
      );
    }
  }
  let webgpuReason: string | undefined;
  if (isNode()) {
    // Dawn would only find CPU emulation here; do not start it (it keeps the event loop alive).
    const { applyVulkanEnvironment, systemHardwareIcds } = await import('./webgpu_node.js');
    const vulkan = applyVulkanEnvironment();
    if (vulkan.driver === 'lavapipe' || systemHardwareIcds().length === 0) {
      webgpuReason = 'no hardware Vulkan driver (lavapipe is slower than wasm)';
    }
  }
  if (webgpuReason === undefined) {
    const probe = await probeWebGPU();
    if (typeof probe === 'string') webgpuReason = probe;
    else if (probe.info.software)
      webgpuReason = `only a software adapter (${describeAdapter(probe.info)})`;
    else {
      const r = await useWebGPU(probe);
      return { ...r, reason: `auto: ${r.reason}; skipped ${skipped.join('; ')}` };
    }
  }
  skipped.push(`webgpu: ${webgpuReason}`);
  if (isNode()) {
    // No GPU: the native addon (oneDNN) is the fastest CPU path whenever it is built.
    const addon = await nativeAddon();
    if (typeof addon !== 'string') {
      const r = await useNative(opts);
      return { ...r, reason: `auto: ${r.reason}; skipped ${skipped.join('; ')}` };
    }
    skipped.push(`native: ${addon}`);
  }
  const r = await useWasm(opts);
  return { ...r, reason: `auto: ${r.reason}; skipped ${skipped.join('; ')}` };
}

/**
 * Makes `name` the active TF.js backend and reports what was chosen and why. 'auto' picks the fastest available:
 * tensorflow (when tfjs-node(-gpu) is installed), else webgpu on a real GPU, else in Node native (when its addon
 * is built: oneDNN, the fastest CPU path), else wasm (CPU-emulated WebGPU such as lavapipe or SwiftShader is slower
 * than wasm). Throws a {@link BackendUnavailableError} saying what is missing
 * when `name` cannot run here, and a plain Error when it is available but fails to start.
 */
export async function useBackend(
  name: BackendName | 'auto',
  opts: UseBackendOptions = {},
): Promise<BackendReport> {
  switch (name) {
    case 'cpu':
      await activate('cpu');
      return { name: 'cpu', reason: 'cpu (plain JavaScript reference backend)' };
    case 'wasm':
      return useWasm(opts);
    case 'webgpu':
      return useWebGPU(await probeWebGPU());
    case 'tensorflow':
      return useTensorflow(opts);
    case 'native':
      return useNative(opts);
    case 'auto':
      return useAuto(opts);
    default:
      throw new Error(
        `useBackend: unknown backend '${String(name)}' (cpu, wasm, webgpu, tensorflow, native or auto)`,
      );
  }
}
