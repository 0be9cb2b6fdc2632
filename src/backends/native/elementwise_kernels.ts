/**
 * The `native` backend's Transpose, Add/Sub/Multiply/RealDiv, Sum/Mean, GatherV2 and the fused AdamW update: the
 * cpu backend runs these one element at a time in JavaScript (index arithmetic per element), which held most of a
 * small model's training step. Each declines (runs the cpu kernel) what it does not cover: other dtypes,
 * broadcasts other than full / row / column / scalar, reductions over non-adjacent axes, zero-size tensors.
 */
import * as tf from '@tensorflow/tfjs';
import { cpuValues } from '../../internals/cpu_backend.js';
import { ADAMW_KERNEL, type AdamWKernelAttrs } from '../../train/adamw_kernel.js';
import type { NativeBackend } from './backend.js';

export interface KernelArgs {
  inputs: tf.NamedTensorInfoMap;
  backend: NativeBackend;
  attrs?: tf.NamedAttrMap;
}
export type Kernel = (args: KernelArgs) => tf.TensorInfo | tf.TensorInfo[];

const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const shapeStr = (s: readonly number[]) => `[${s.join(',')}]`;

/** How a binary operand is read, with the output viewed as [outer, inner] (the addon's codes). */
export const BROADCAST = { full: 0, row: 1, column: 2, scalar: 3 } as const;

interface Split {
  mode: number;
  outer: number;
  inner: number;
}

/** How `shape` broadcasts to `out`: full, scalar, a row (trailing axes) or a column (leading axes). */
function classify(shape: readonly number[], out: readonly number[]): Split | undefined {
  const n = prod(out);
  const size = prod(shape);
  if (size === n) return { mode: BROADCAST.full, outer: 1, inner: n };
  if (size === 1) return { mode: BROADCAST.scalar, outer: 1, inner: n };
  const r = out.length;
  const x = [...new Array<number>(r - shape.length).fill(1), ...shape];
  // row: x[d] == 1 before k, x[d] == out[d] from k on
  let k = r;
  while (k > 0 && x[k - 1] === out[k - 1]) k--;
  if (x.slice(0, k).every((d) => d === 1)) {
    const inner = prod(out.slice(k));
    return { mode: BROADCAST.row, outer: n / inner, inner };
  }
  // column: x[d] == out[d] before k, 1 from k on
  k = 0;
  while (k < r && x[k] === out[k]) k++;
  if (x.slice(k).every((d) => d === 1)) {
    const outer = prod(out.slice(0, k));
    return { mode: BROADCAST.column, outer, inner: n / outer };
  }
  return undefined;
}

/** The [outer, inner] view and both operands' modes, or undefined when the addon does not cover the broadcast. */
export function binaryPlan(
  a: readonly number[],
  b: readonly number[],
  out: readonly number[],
): { outer: number; inner: number; modeA: number; modeB: number } | undefined {
  const sa = classify(a, out);
  const sb = classify(b, out);
  if (sa === undefined || sb === undefined) return undefined;
  const flat = (s: Split) => s.mode === BROADCAST.full || s.mode === BROADCAST.scalar;
  let split: Split;
  if (flat(sa)) split = sb;
  else if (flat(sb) || (sa.outer === sb.outer && sa.inner === sb.inner)) split = sa;
  else return undefined;
  return { outer: split.outer, inner: split.inner, modeA: sa.mode, modeB: sb.mode };
}

const BINARY_OPS = { Add: 0, Sub: 1, Multiply: 2, RealDiv: 3 } as const;
type BinaryName = keyof typeof BINARY_OPS;

function binaryKernel(name: BinaryName, fallback: Kernel): Kernel {
  return (args) => {
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const dtypeOk =
      a.dtype === b.dtype && (a.dtype === 'float32' || (a.dtype === 'int32' && name !== 'RealDiv'));
    if (!dtypeOk) return fallback(args);
    const out = tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
    const n = prod(out);
    const plan = n === 0 ? undefined : binaryPlan(a.shape, b.shape, out);
    const av = cpuValues(args.backend, a);
    const bv = cpuValues(args.backend, b);
    // the values' array type must be the dtype's (the cpu backend may hold an int32 tensor in a Float32Array)
    const Want = a.dtype === 'int32' ? Int32Array : Float32Array;
    if (plan === undefined || !(av instanceof Want) || !(bv instanceof Want)) return fallback(args);
    const values = a.dtype === 'int32' ? new Int32Array(n) : args.backend.alloc(n);
    args.backend.addon.binary(
      BINARY_OPS[name],
      av as Float32Array | Int32Array,
      bv as Float32Array | Int32Array,
      values,
      plan.outer,
      plan.inner,
      plan.modeA,
      plan.modeB,
    );
    return args.backend.makeTensorInfo(out, a.dtype, values);
  };
}

/** Transpose of float32/int32 tensors of rank 1-6 on the addon. */
function transposeKernel(fallback: Kernel): Kernel {
  return (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    const perm = (args.attrs?.perm as number[] | undefined) ?? [];
    const rank = x.shape.length;
    const xv = cpuValues(args.backend, x);
    if (
      rank === 0 ||
      rank > 6 ||
      perm.length !== rank ||
      prod(x.shape) === 0 ||
      !(
        (x.dtype === 'float32' && xv instanceof Float32Array) ||
        (x.dtype === 'int32' && xv instanceof Int32Array)
      )
    ) {
      return fallback(args);
    }
    const out = perm.map((p) => x.shape[p]);
    const values =
      xv instanceof Int32Array ? new Int32Array(xv.length) : args.backend.alloc(xv.length);
    args.backend.addon.transpose(xv, values, x.shape, perm, 0);
    return args.backend.makeTensorInfo(out, x.dtype, values);
  };
}

/** Sum (float32) and Mean (float32 input) over one block of adjacent axes. */
function reduceKernel(mean: boolean, fallback: Kernel): Kernel {
  return (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    const xv = cpuValues(args.backend, x);
    if (x.dtype !== 'float32' || !(xv instanceof Float32Array) || xv.length === 0) {
      return fallback(args);
    }
    const axes = tf.util
      .parseAxisParam(args.attrs?.axis as number | number[], x.shape)
      .slice()
      .sort((p, q) => p - q);
    if (axes.length === 0 || axes.some((a, i) => i > 0 && a !== axes[i - 1] + 1)) {
      return fallback(args);
    }
    const k1 = axes[0];
    const k2 = axes[axes.length - 1] + 1;
    const outer = prod(x.shape.slice(0, k1));
    const mid = prod(x.shape.slice(k1, k2));
    const inner = prod(x.shape.slice(k2));
    const values = args.backend.alloc(outer * inner);
    args.backend.addon.reduceSum(xv, values, outer, mid, inner, mean);
    let shape = tf.backend_util.computeOutAndReduceShapes(x.shape, axes)[0];
    if (args.attrs?.keepDims) shape = tf.backend_util.expandShapeToKeepDim(shape, axes);
    return args.backend.makeTensorInfo(shape, 'float32', values);
  };
}

type Values = Float32Array | Int32Array | Uint8Array;

/**
 * GatherV2 without batch dims by copies of contiguous runs (selecting a training batch of images was 35 ms a call
 * on the cpu kernel). Indices out of range go to the cpu kernel, which reports them.
 */
function gatherKernel(fallback: Kernel): Kernel {
  return (args) => {
    const { x, indices } = args.inputs as { x: tf.TensorInfo; indices: tf.TensorInfo };
    const xv = cpuValues(args.backend, x);
    const iv = cpuValues(args.backend, indices);
    const batchDims = Number(args.attrs?.batchDims ?? 0);
    if (
      xv === undefined ||
      !(iv instanceof Int32Array) ||
      batchDims !== 0 ||
      x.shape.length === 0
    ) {
      return fallback(args);
    }
    const axis = tf.util.parseAxisParam(args.attrs?.axis as number, x.shape)[0];
    const dim = x.shape[axis];
    for (let i = 0; i < iv.length; i++) if (!(iv[i] >= 0 && iv[i] < dim)) return fallback(args);
    const outer = prod(x.shape.slice(0, axis));
    const inner = prod(x.shape.slice(axis + 1));
    const shape = [...x.shape.slice(0, axis), ...indices.shape, ...x.shape.slice(axis + 1)];
    // the dtype's array (the cpu backend may hold an int32 tensor in a Float32Array; its kernel writes by dtype)
    const Out = x.dtype === 'int32' ? Int32Array : x.dtype === 'bool' ? Uint8Array : Float32Array;
    const out: Values = new Out(outer * iv.length * inner);
    let o = 0;
    for (let r = 0; r < outer; r++) {
      const base = r * dim * inner;
      for (let i = 0; i < iv.length; i++) {
        const s = base + iv[i] * inner;
        out.set(xv.subarray(s, s + inner), o);
        o += inner;
      }
    }
    return args.backend.makeTensorInfo(shape, x.dtype, out);
  };
}

/** The fused AdamW update (contract in src/train/adamw_kernel.ts): three new tensors, inputs untouched. */
function adamwKernel(args: KernelArgs): tf.TensorInfo[] {
  const { param, grad, m, v } = args.inputs as Record<string, tf.TensorInfo>;
  const at = args.attrs as unknown as AdamWKernelAttrs;
  const be = args.backend;
  for (const [name, t] of [
    ['grad', grad],
    ['m', m],
    ['v', v],
  ] as const) {
    if (!tf.util.arraysEqual(t.shape, param.shape)) {
      throw new Error(
        `native AdamW: ${name} ${shapeStr(t.shape)} must have the parameter's shape ${shapeStr(param.shape)}`,
      );
    }
  }
  const n = prod(param.shape);
  const out = [be.alloc(n), be.alloc(n), be.alloc(n)];
  be.addon.adamw(
    be.f32(param, 'AdamW', 'param'),
    be.f32(grad, 'AdamW', 'grad'),
    be.f32(m, 'AdamW', 'm'),
    be.f32(v, 'AdamW', 'v'),
    out[0],
    out[1],
    out[2],
    n,
    at.lr,
    at.beta1,
    at.beta2,
    at.epsilon,
    at.bc1,
    at.bc2,
    at.decay,
  );
  return out.map((values) => be.output(values, param.shape));
}

/** The kernels of this file over the cpu ones they fall back to. */
export function elementwiseKernels(cpuKernel: (name: string) => Kernel): Record<string, Kernel> {
  const out: Record<string, Kernel> = {
    Transpose: transposeKernel(cpuKernel('Transpose')),
    Sum: reduceKernel(false, cpuKernel('Sum')),
    Mean: reduceKernel(true, cpuKernel('Mean')),
    GatherV2: gatherKernel(cpuKernel('GatherV2')),
  };
  for (const name of Object.keys(BINARY_OPS) as BinaryName[]) {
    out[name] = binaryKernel(name, cpuKernel(name));
  }
  return out;
}

/** Registers the fused AdamW update for the native backend (idempotent). */
export function registerAdamWKernel(backendName: string): void {
  if (tf.getKernel(ADAMW_KERNEL, backendName) !== undefined) return;
  tf.registerKernel({
    kernelName: ADAMW_KERNEL,
    backendName,
    kernelFunc: adamwKernel as unknown as tf.KernelFunc,
  });
}
