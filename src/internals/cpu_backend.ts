/**
 * What the `native` backend relies on inside TF.js's cpu backend (@tensorflow/tfjs-backend-cpu 4.22), in one place:
 * the MathBackendCPU class it extends, the cpu kernels it re-registers under its own name, the typed array that
 * holds a tensor's values (read in place, no copy), and the first-use console notice it silences.
 */
import * as tf from '@tensorflow/tfjs';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';

export { MathBackendCPU };

/** Every kernel the cpu backend registers (to register them again for a backend built on MathBackendCPU). */
export function cpuKernelConfigs(): tf.KernelConfig[] {
  return tf.getKernelsForBackend('cpu');
}

/**
 * The typed array holding a tensor's values on a MathBackendCPU (the array itself, not a copy: never write to it).
 * Undefined when the backend holds no values of that dtype there (complex or string tensors).
 */
export function cpuValues(
  backend: MathBackendCPU,
  t: tf.TensorInfo,
): Float32Array | Int32Array | Uint8Array | undefined {
  if (!backend.data.has(t.dataId)) return undefined;
  const v = backend.data.get(t.dataId).values;
  if (v instanceof Float32Array || v instanceof Int32Array || v instanceof Uint8Array) return v;
  return undefined;
}

/** Turns off the "install tfjs-node" notice MathBackendCPU prints on its first write in Node. */
export function silenceFirstUseNotice(backend: MathBackendCPU): void {
  (backend as unknown as { firstUse: boolean }).firstUse = false;
}

/**
 * Whether `backend` keeps the typed array handed to `write` (e.g. by `tf.tensor(values)`) as the tensor's values,
 * without copying: MathBackendCPU and backends built on it (cpu, native). A tensor made there from a view of a
 * memory-mapped file reads the file's pages in place.
 */
export function keepsWrittenArrays(backend: tf.KernelBackend): boolean {
  return backend instanceof MathBackendCPU;
}
