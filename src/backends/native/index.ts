/**
 * The `native` TF.js backend for Node: MathBackendCPU (plain typed arrays) with MatMul/BatchMatMul/_FusedMatMul,
 * Softmax and the model's LayerNorm, GELU-tanh and attention (with their gradients) in C++ on oneDNN.
 */
import * as tf from '@tensorflow/tfjs';
import { setLayerKernelOverrides } from '../../layers/kernels/overrides.js';
import { type NativeAddon, type NativeInfo, loadNativeAddon } from './addon.js';
import { NativeBackend } from './backend.js';
import { NATIVE, registerNativeKernels } from './kernels.js';
import { NATIVE_LAYER_OVERRIDES } from './ops.js';

export {
  NATIVE_ADDON_ENV,
  NATIVE_BUILD_HINT,
  gemmPolicy,
  nativeAddonPath,
  openmpWaits,
} from './addon.js';
export type { NativeAddon, NativeInfo } from './addon.js';
export { NativeBackend } from './backend.js';
export { NATIVE_KERNELS } from './kernels.js';

/**
 * Registers the 'native' backend (idempotent) and returns the addon, or a one-line reason it is unavailable
 * (what to install, and `npm run build:native`).
 */
export function registerNativeBackend(): NativeAddon | string {
  const addon = loadNativeAddon();
  if (typeof addon === 'string') return addon;
  if (tf.findBackendFactory(NATIVE) === null) {
    // Priority below cpu's: importing this never makes 'native' TF.js's default without useBackend.
    tf.registerBackend(NATIVE, () => new NativeBackend(addon), 0);
  }
  registerNativeKernels();
  setLayerKernelOverrides(NATIVE, NATIVE_LAYER_OVERRIDES);
  return addon;
}

/** Sets the threads the native kernels run (OpenMP) and returns the addon's report. */
export function setNativeThreads(addon: NativeAddon, threads: number): NativeInfo {
  if (!Number.isInteger(threads) || threads < 1) {
    throw new Error(`native backend: threads must be a positive integer, got ${threads}`);
  }
  addon.setThreads(threads);
  return addon.info();
}
