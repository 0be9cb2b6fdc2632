import * as tf from '@tensorflow/tfjs';
import { NATIVE_GEMM_ENV } from '../../src/backends/native/addon.js';
import { type NativeAddon, registerNativeBackend } from '../../src/backends/native/index.js';
import { maxDiff } from '../helpers/max_diff.js';
import { skipUnavailable } from '../helpers/require_backend.js';

/** Registers the native backend or skips the suite (fails instead when CI requires 'native'). */
export function requireNative(ctx: Mocha.Context): NativeAddon {
  const addon = registerNativeBackend();
  if (typeof addon === 'string') skipUnavailable(ctx, 'native', addon);
  return addon;
}

/** A seeded generator of uniform values in [-1, 1) (mulberry32). */
export function random(seed: number): (n: number) => Float32Array {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return (n) => Float32Array.from({ length: n }, () => next() * 2 - 1);
}

/** Runs f on a backend and returns copies of its outputs' values (f's tensors are freed). */
export async function valuesOn(
  backend: string,
  f: () => tf.Tensor | tf.Tensor[],
): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  const out = tf.tidy(f);
  const list = Array.isArray(out) ? out : [out];
  const values = list.map((t) => Float32Array.from(t.dataSync()));
  tf.dispose(list);
  return values;
}

export { maxDiff };

/** Runs f on cpu and native and asserts every output agrees within rtol x max|cpu| (+ a tiny absolute floor). */
export async function assertNativeMatchesCpu(
  label: string,
  f: () => tf.Tensor | tf.Tensor[],
  rtol = 2e-5,
): Promise<void> {
  const want = await valuesOn('cpu', f);
  const got = await valuesOn('native', f);
  if (want.length !== got.length)
    throw new Error(`${label}: ${got.length} outputs, expected ${want.length}`);
  for (let i = 0; i < want.length; i++) {
    const { diff, scale } = maxDiff(got[i], want[i]);
    if (!(diff <= rtol * scale + 1e-6)) {
      throw new Error(
        `${label} output ${i}: max abs diff ${diff} over max |cpu| ${scale} (rtol ${rtol})`,
      );
    }
  }
}

/**
 * Runs f with SIGLIP2_NATIVE_GEMM set to `lib` (unset for undefined), restored after. The addon reads it at every
 * matmul.
 */
export async function withGemm<T>(lib: string | undefined, f: () => Promise<T> | T): Promise<T> {
  const before = process.env[NATIVE_GEMM_ENV];
  if (lib === undefined) delete process.env[NATIVE_GEMM_ENV];
  else process.env[NATIVE_GEMM_ENV] = lib;
  try {
    return await f();
  } finally {
    if (before === undefined) delete process.env[NATIVE_GEMM_ENV];
    else process.env[NATIVE_GEMM_ENV] = before;
  }
}
