import * as tf from '@tensorflow/tfjs';

/**
 * Host-side copies of small index tensors (token ids, NaFlex patch masks and grids) that the model's layers read
 * on the CPU. Layer `call`s are synchronous, but a synchronous read is not possible everywhere: TF.js's webgpu
 * backend reads a tensor synchronously only in a browser (it needs `OffscreenCanvas`), and it is a pipeline stall
 * on any GPU. So the asynchronous entry points (`await readHostValues(t)`, e.g. in `prepareBatch` before a
 * training step) read the values once and remember them for the tensor's buffer; a layer then takes them from
 * here with `hostValues(t, what)` without touching the device.
 *
 * Entries are keyed by the tensor's `dataId` in a WeakMap, so they go away with the buffer. TF.js tensors are
 * immutable (a variable's `assign` gives it a new `dataId`), so a remembered copy never goes stale.
 */
export type HostValues = Float32Array | Int32Array | Uint8Array;

const cache = new WeakMap<object, HostValues>();

/** Reads `t` asynchronously and remembers its values for `hostValues`. Returns them. */
export async function readHostValues(t: tf.Tensor): Promise<HostValues> {
  const known = cache.get(t.dataId);
  if (known) return known;
  const values = (await t.data()) as HostValues;
  cache.set(t.dataId, values);
  return values;
}

/** Remembers values already on the host for `t` (e.g. for a tensor made from them). */
export function rememberHostValues(t: tf.Tensor, values: HostValues): void {
  if (values.length !== t.size) {
    throw new Error(
      `rememberHostValues: ${values.length} values for a tensor of ${t.size} elements`,
    );
  }
  cache.set(t.dataId, values);
}

/** The remembered values of `t`, or undefined. */
export function knownHostValues(t: tf.Tensor): HostValues | undefined {
  return cache.get(t.dataId);
}

/**
 * The values of `t` on the host: the remembered copy when `readHostValues` has read it, else a synchronous read
 * (fine on cpu and wasm, and for tensors whose values still live on the CPU). When the synchronous read fails (the
 * webgpu backend in Node), the error names `what` and the asynchronous entry point to use instead.
 */
export function hostValues(t: tf.Tensor, what: string): HostValues {
  const known = cache.get(t.dataId);
  if (known) return known;
  try {
    return t.dataSync() as HostValues;
  } catch (e) {
    throw new Error(
      `${what}: reading it synchronously failed on the ${tf.getBackend()} backend (${(e as Error).message}); ` +
        'call the asynchronous API (e.g. `await prepareBatch(model, batch)` before a training step or ' +
        '`await lossAndGrads(...)`), which reads it first',
      { cause: e },
    );
  }
}
