/**
 * tfjs-backend-wasm in a browser with the threads asked for.
 *
 * The package's C++ side sizes its thread pool from emscripten_num_logical_cores() / 2, which in a browser is
 * navigator.hardwareConcurrency / 2: on a 2-core machine one thread, whatever setThreadsCount() asks for (the cap
 * wasm_node.ts lifts in Node by the same means). Here navigator.hardwareConcurrency reads 2 x threads while the
 * backend starts (the module reads it once, when it is instantiated), so the pool gets the threads asked for, never
 * more than the real cores nor the 8 workers the package creates up front (its own upper bound). Threads need a cross-origin isolated page (COOP/COEP headers, for SharedArrayBuffer); elsewhere the
 * package loads its single-threaded build. The threads reported are counted from the running pthread workers.
 */
import * as tf from '@tensorflow/tfjs';

/** The emscripten module inside the wasm backend, as far as this file reads it. */
interface WasmBackendInternals {
  wasm?: { PThread?: { runningWorkers?: unknown[] } };
}

export interface BrowserWasmPlan {
  /** Threads the backend is started with. */
  threads: number;
  /** Logical cores of this machine (navigator.hardwareConcurrency). */
  cores: number;
  /** Whether the page is cross-origin isolated (threads need it). */
  isolated: boolean;
}

/** The most threads tfjs-backend-wasm runs: the pthread workers it creates up front. */
export const MAX_WASM_THREADS = 8;

/** The threads to start: those requested (default: every core), at most the cores and 8, 1 without isolation. */
export function planBrowserWasm(requested: number | undefined): BrowserWasmPlan {
  const g = globalThis as {
    navigator?: { hardwareConcurrency?: number };
    crossOriginIsolated?: boolean;
  };
  const cores = Math.max(1, g.navigator?.hardwareConcurrency ?? 1);
  const isolated = g.crossOriginIsolated === true;
  const wanted = requested ?? cores;
  if (!Number.isInteger(wanted) || wanted < 1) {
    throw new Error(`useBackend('wasm'): threads must be a positive integer, got ${requested}`);
  }
  return { threads: isolated ? Math.min(wanted, cores, MAX_WASM_THREADS) : 1, cores, isolated };
}

/** Runs `start` while navigator.hardwareConcurrency reads `cores`; restores the real value after. */
export async function withHardwareConcurrency<T>(
  cores: number,
  start: () => Promise<T>,
): Promise<T> {
  const nav = (globalThis as { navigator?: object }).navigator;
  if (nav === undefined) return start();
  const own = Object.getOwnPropertyDescriptor(nav, 'hardwareConcurrency');
  Object.defineProperty(nav, 'hardwareConcurrency', { value: cores, configurable: true });
  try {
    return await start();
  } finally {
    if (own) Object.defineProperty(nav, 'hardwareConcurrency', own);
    else delete (nav as { hardwareConcurrency?: number }).hardwareConcurrency;
  }
}

/**
 * The threads the active wasm backend runs: the calling thread plus its running pthread workers (threaded build),
 * or undefined when the module does not expose them (single-threaded build). Node and browser alike.
 */
export function runningWasmThreads(): number | undefined {
  const workers = (tf.backend() as unknown as WasmBackendInternals).wasm?.PThread?.runningWorkers;
  return workers === undefined ? undefined : 1 + workers.length;
}
