/**
 * WebGPU storage-buffer binding limit and a guard against exceeding it.
 *
 * TF.js binds each input tensor as one storage buffer. A tensor larger than the adapter's
 * `maxStorageBufferBindingSize` (128 MiB on lavapipe, 1 GiB in Chromium's SwiftShader, device-dependent on real
 * GPUs) makes ops such as `gather` return zeros without an exception. Check sizes up front instead.
 */
import * as tf from '@tensorflow/tfjs';
import { readEnv } from './env.js';

/** Environment variable that forces a smaller binding limit (bytes) while the webgpu backend is active. */
export const MAX_BINDING_ENV = 'SIGLIP2_WEBGPU_MAX_BINDING';

let adapterLimit: number | undefined;
let forcedLimit: number | undefined;

/** Records the binding limit of the adapter the webgpu backend uses (called by useBackend). */
export function setAdapterBindingLimit(bytes: number | undefined): void {
  adapterLimit = bytes;
}

/**
 * Forces a smaller binding limit (bytes) while the webgpu backend is active, e.g. to exercise sharding in tests;
 * `undefined` removes the override. Takes precedence over the SIGLIP2_WEBGPU_MAX_BINDING environment variable.
 */
export function forceBindingLimit(bytes: number | undefined): void {
  if (bytes !== undefined && !(Number.isFinite(bytes) && bytes > 0)) {
    throw new Error(`forceBindingLimit: bytes must be a positive number, got ${bytes}`);
  }
  forcedLimit = bytes;
}

function envLimit(): number | undefined {
  const raw = readEnv(MAX_BINDING_ENV);
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!(Number.isFinite(n) && n > 0)) {
    throw new Error(`${MAX_BINDING_ENV} must be a positive number of bytes, got '${raw}'`);
  }
  return n;
}

/**
 * maxStorageBufferBindingSize (bytes) of the active webgpu adapter, lowered by forceBindingLimit() or
 * SIGLIP2_WEBGPU_MAX_BINDING when set; undefined when the active backend is not webgpu (no such limit).
 */
export function bindingLimit(): number | undefined {
  if (tf.getBackend() !== 'webgpu') return undefined;
  const override = forcedLimit ?? envLimit();
  if (adapterLimit === undefined) return override;
  return override === undefined ? adapterLimit : Math.min(override, adapterLimit);
}

function formatBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  return `${n} bytes`;
}

/**
 * Throws when a tensor of `shape` would exceed the storage-buffer binding limit (default: bindingLimit(), so a
 * no-op off webgpu). The error names the tensor, its size and the limit.
 */
export function assertFitsBinding(
  name: string,
  shape: readonly number[],
  bytesPerElement = 4,
  limit: number | undefined = bindingLimit(),
): void {
  if (limit === undefined) return;
  const bytes = shape.reduce((a, b) => a * b, 1) * bytesPerElement;
  if (bytes > limit) {
    throw new Error(
      `Tensor '${name}' [${shape.join(', ')}] is ${formatBytes(bytes)}, over the WebGPU storage-buffer binding ` +
        `limit of ${formatBytes(limit)}: WebGPU would silently read zeros. Split it into row shards ` +
        `(shardTable + shardedGather) or run this op on another backend.`,
    );
  }
}
