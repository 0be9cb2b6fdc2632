/**
 * Kernels of the `native` backend: every cpu kernel registered again under 'native', then MatMul, BatchMatMul,
 * _FusedMatMul and Softmax replaced by the addon's, Slice/SplitV by copies of contiguous runs, and Transpose,
 * Add/Sub/Multiply/RealDiv, Sum/Mean, GatherV2 and a fused AdamW update by elementwise_kernels.ts. Anything the addon does not cover (int32 operands, PReLU,
 * batch shapes that broadcast in both operands, zero-size tensors) runs the cpu kernel.
 */
import * as tf from '@tensorflow/tfjs';
import { cpuKernelConfigs, cpuValues as cpuValuesOf } from '../../internals/cpu_backend.js';
import { ACTIVATIONS } from './addon.js';
import type { NativeBackend } from './backend.js';
import { elementwiseKernels, registerAdamWKernel } from './elementwise_kernels.js';

export const NATIVE = 'native';

interface KernelArgs {
  inputs: tf.NamedTensorInfoMap;
  backend: NativeBackend;
  attrs?: tf.NamedAttrMap;
}
type Kernel = (args: KernelArgs) => tf.TensorInfo | tf.TensorInfo[];

const cpuKernels = new Map<string, Kernel>();

function cpuKernel(name: string): Kernel {
  const k = cpuKernels.get(name);
  if (k === undefined) throw new Error(`native: no cpu kernel '${name}' to fall back to`);
  return k;
}

const prod = (s: number[]) => s.reduce((a, b) => a * b, 1);
const shapeStr = (s: number[]) => `[${s.join(',')}]`;

type FusedActivation = keyof typeof ACTIVATIONS;

/** a x b on the addon; undefined when the cpu kernel must do it. */
function nativeMatMul(
  kernel: string,
  backend: NativeBackend,
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
  bias?: tf.TensorInfo,
  activation: FusedActivation = 'linear',
  alpha = 0,
): tf.TensorInfo | undefined {
  if (a.dtype !== 'float32' || b.dtype !== 'float32') return undefined;
  if (a.shape.length < 2 || b.shape.length < 2) return undefined;
  const ra = a.shape.length;
  const rb = b.shape.length;
  const m = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
  const k = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
  const kb = transposeB ? b.shape[rb - 1] : b.shape[rb - 2];
  const n = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
  if (k !== kb) {
    throw new Error(
      `native ${kernel}: inner dimensions differ: a ${shapeStr(a.shape)}${transposeA ? ' (transposed)' : ''} x ` +
        `b ${shapeStr(b.shape)}${transposeB ? ' (transposed)' : ''}`,
    );
  }
  const outerA = a.shape.slice(0, -2);
  const outerB = b.shape.slice(0, -2);
  const batchA = prod(outerA);
  const batchB = prod(outerB);
  let outer: number[];
  if (batchA === 1 && batchB === 1) outer = outerA.length >= outerB.length ? outerA : outerB;
  else if (batchB === 1 && outerB.length <= outerA.length) outer = outerA;
  else if (batchA === 1 && outerA.length <= outerB.length) outer = outerB;
  else if (outerA.length === outerB.length && outerA.every((d, i) => d === outerB[i]))
    outer = outerA;
  else return undefined; // broadcasting in both operands: the cpu kernel
  if (m * k * n * batchA * batchB === 0) return undefined;
  let biasValues: Float32Array | null = null;
  if (bias !== undefined) {
    if (bias.dtype !== 'float32' || prod(bias.shape) !== n) return undefined;
    if (bias.shape.length > 0 && bias.shape[bias.shape.length - 1] !== n) return undefined;
    biasValues = backend.f32(bias, kernel, 'bias');
  }
  const av = backend.f32(a, kernel, 'a');
  const bv = backend.f32(b, kernel, 'b');
  const out = backend.alloc(Math.max(batchA, batchB) * m * n);
  const packKey = batchB === 1 ? backend.packKeyFor(b, k * n, transposeB) : 0;
  const copied = backend.addon.matmul(
    av,
    bv,
    out,
    batchA,
    batchB,
    m,
    k,
    n,
    transposeA,
    transposeB,
    biasValues,
    ACTIVATIONS[activation],
    alpha,
    packKey,
  );
  if (copied) backend.afterPack(b, bv, transposeB);
  return backend.output(out, [...outer, m, n]);
}

function batchMatMul(args: KernelArgs): tf.TensorInfo {
  const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
  const ta = Boolean(args.attrs?.transposeA);
  const tb = Boolean(args.attrs?.transposeB);
  return (
    nativeMatMul('BatchMatMul', args.backend, a, b, ta, tb) ??
    (cpuKernel('BatchMatMul')(args) as tf.TensorInfo)
  );
}

const FUSED: Record<string, FusedActivation> = {
  linear: 'linear',
  relu: 'relu',
  relu6: 'relu6',
  elu: 'elu',
  sigmoid: 'sigmoid',
  leakyrelu: 'leakyrelu',
};

function fusedMatMul(args: KernelArgs): tf.TensorInfo {
  const { a, b, bias, preluActivationWeights } = args.inputs as Record<
    string,
    tf.TensorInfo | undefined
  >;
  const act = FUSED[String(args.attrs?.activation ?? 'linear')];
  if (act !== undefined && preluActivationWeights === undefined) {
    const out = nativeMatMul(
      '_FusedMatMul',
      args.backend,
      a as tf.TensorInfo,
      b as tf.TensorInfo,
      Boolean(args.attrs?.transposeA),
      Boolean(args.attrs?.transposeB),
      bias,
      act,
      Number(args.attrs?.leakyreluAlpha ?? 0.2),
    );
    if (out !== undefined) return out;
  }
  return cpuKernel('_FusedMatMul')(args) as tf.TensorInfo;
}

function softmax(args: KernelArgs): tf.TensorInfo {
  const logits = args.inputs.logits as tf.TensorInfo;
  const rank = logits.shape.length;
  const dim = Number(args.attrs?.dim ?? -1);
  const size = prod(logits.shape);
  if (logits.dtype !== 'float32' || rank === 0 || size === 0 || (dim !== -1 && dim !== rank - 1)) {
    return cpuKernel('Softmax')(args) as tf.TensorInfo;
  }
  const cols = logits.shape[rank - 1];
  const out = args.backend.alloc(size);
  args.backend.addon.softmax(args.backend.f32(logits, 'Softmax', 'logits'), out, size / cols, cols);
  return args.backend.output(out, logits.shape);
}

type Values = Float32Array | Int32Array | Uint8Array;

/**
 * Copies the box `begin`/`size` out of `x` (shape) by contiguous runs of the last axis. A float32 box goes into an
 * array recycled by the backend (every element is written), which saves zeroing and faulting in a fresh one: the
 * pooling head slices 4.7 MB of its in-projection at every call.
 */
function sliceValues(
  backend: NativeBackend,
  x: Values,
  shape: number[],
  begin: number[],
  size: number[],
): Values {
  const rank = shape.length;
  const n = prod(size);
  const out =
    x instanceof Float32Array && n > 0
      ? backend.alloc(n)
      : new (x.constructor as new (n: number) => Values)(n);
  if (n === 0) return out;
  const strides = tf.util.computeStrides(shape);
  const run = size[rank - 1];
  const rows = n / run;
  const idx = new Array<number>(Math.max(rank - 1, 0)).fill(0);
  for (let r = 0; r < rows; r++) {
    let off = begin[rank - 1];
    for (let d = 0; d < rank - 1; d++) off += (begin[d] + idx[d]) * strides[d];
    out.set(x.subarray(off, off + run), r * run);
    for (let d = rank - 2; d >= 0; d--) {
      if (++idx[d] < size[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

/**
 * `Slice` by contiguous runs: the cpu kernel copies a strided slice one element at a time through index
 * arithmetic (slicing the pooling head's [768, 2304] in-projection took seconds).
 */
function slice(args: KernelArgs): tf.TensorInfo {
  const x = args.inputs.x as tf.TensorInfo;
  const values =
    x.dtype === 'string' || x.shape.length === 0 ? undefined : cpuValuesOf(args.backend, x);
  if (values === undefined) return cpuKernel('Slice')(args) as tf.TensorInfo;
  const [begin, size] = tf.slice_util.parseSliceParams(
    x as unknown as tf.Tensor,
    args.attrs?.begin as number | number[],
    args.attrs?.size as number | number[],
  );
  tf.slice_util.assertParamsValid(x as unknown as tf.Tensor, begin, size);
  return args.backend.makeTensorInfo(
    size,
    x.dtype,
    sliceValues(args.backend, values, x.shape, begin, size),
  );
}

/** `SplitV` (tf.split) through the slice above (the cpu kernel calls its own slice). */
function splitV(args: KernelArgs): tf.TensorInfo[] {
  const x = args.inputs.x as tf.TensorInfo;
  const values =
    x.dtype === 'string' || x.shape.length === 0 ? undefined : cpuValuesOf(args.backend, x);
  if (values === undefined) return cpuKernel('SplitV')(args) as tf.TensorInfo[];
  const axis = tf.util.parseAxisParam(args.attrs?.axis as number, x.shape)[0];
  const sizes = tf.backend_util.prepareSplitSize(
    x as unknown as tf.Tensor,
    args.attrs?.numOrSizeSplits as number | number[],
    axis,
  );
  const begin = new Array<number>(x.shape.length).fill(0);
  const size = x.shape.slice();
  return sizes.map((s) => {
    size[axis] = s;
    const out = args.backend.makeTensorInfo(
      size.slice(),
      x.dtype,
      sliceValues(args.backend, values, x.shape, begin, size),
    );
    begin[axis] += s;
    return out;
  });
}

const OVERRIDES: Record<string, Kernel> = {
  BatchMatMul: batchMatMul,
  _FusedMatMul: fusedMatMul,
  Softmax: softmax,
  Slice: slice,
  SplitV: splitV,
  // Transpose, Add/Sub/Multiply/RealDiv, Sum/Mean, GatherV2 (elementwise_kernels.ts)
  ...elementwiseKernels((name) => (args) => cpuKernel(name)(args)),
};

/** The kernel names the addon runs (MatMul is BatchMatMul in TF.js 4). */
export const NATIVE_KERNELS = Object.keys(OVERRIDES);

/** Registers every cpu kernel for 'native', then the native ones over them (idempotent). */
export function registerNativeKernels(): void {
  for (const config of cpuKernelConfigs()) {
    cpuKernels.set(config.kernelName, config.kernelFunc as unknown as Kernel);
    if (tf.getKernel(config.kernelName, NATIVE) !== undefined) continue;
    const own = OVERRIDES[config.kernelName];
    tf.registerKernel({
      ...config,
      backendName: NATIVE,
      kernelFunc: (own ?? config.kernelFunc) as unknown as tf.KernelFunc,
    });
  }
  registerAdamWKernel(NATIVE);
}
