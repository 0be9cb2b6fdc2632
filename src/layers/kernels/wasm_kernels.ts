import * as tf from '@tensorflow/tfjs';
import { wasmHeap } from '../../internals/tfjs.js';

// Replacements for three kernels of TF.js's wasm backend (4.22) that the layers and the trainer lean on. Each
// computes exactly what the stock kernel computes; they differ in copies only.

interface KernelArgs {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}

type Fallback = (args: KernelArgs) => tf.TensorInfo | tf.TensorInfo[];
const fallbacks = new Map<string, Fallback>();

/**
 * `Slice`: the stock kernel first reads the whole input out of the heap (`readSync` copies it), so slicing one
 * row off a tensor costs a copy of all of it; unstacking the 96 heads of a [8, 12, 196, 196] attention map took
 * 0.8 s here. A slice that is one contiguous run is copied straight from the heap instead.
 */
function sliceWasm(args: KernelArgs): tf.TensorInfo {
  const heap = wasmHeap(args.backend);
  const x = args.inputs.x as tf.TensorInfo;
  const [begin, size] = tf.slice_util.parseSliceParams(
    x as unknown as tf.Tensor,
    args.attrs?.begin as number | number[],
    args.attrs?.size as number | number[],
  );
  if (x.dtype === 'string' || !tf.slice_util.isSliceContinous(x.shape, begin, size)) {
    return (fallbacks.get('Slice') as Fallback)(args) as tf.TensorInfo;
  }
  const out = heap.output(size, x.dtype);
  const n = size.reduce((a, b) => a * b, 1);
  const offset = tf.slice_util.computeFlatOffset(begin, tf.util.computeStrides(x.shape));
  // Views are taken after makeOutput, which may grow (and so move) the heap.
  heap.view(out).set(heap.view(x).subarray(offset, offset + n));
  return out;
}

/** `Unpack` (`tf.unstack`) through the slice above (the stock one calls the stock slice directly). */
function unpackWasm(args: KernelArgs): tf.TensorInfo[] {
  const value = args.inputs.value as tf.TensorInfo;
  const rank = value.shape.length;
  let axis = Number(args.attrs?.axis ?? 0);
  if (axis < 0) axis += rank;
  const outShape = value.shape.filter((_, i) => i !== axis);
  const begin = new Array<number>(rank).fill(0);
  const size = value.shape.slice();
  size[axis] = 1;
  const outs: tf.TensorInfo[] = [];
  for (let i = 0; i < value.shape[axis]; i++) {
    begin[axis] = i;
    const s = sliceWasm({ inputs: { x: value }, backend: args.backend, attrs: { begin, size } });
    outs.push({ dataId: s.dataId, dtype: s.dtype, shape: outShape });
  }
  return outs;
}

/**
 * `Identity` sharing the input's buffer (reference counted, as `Reshape` already does on wasm and as the cpu and
 * WebGPU backends do) instead of copying it. The gradient tape keeps every tensor a backward pass needs as a
 * clone (`Identity`), so with the stock kernel a training step held a second copy of every activation and of
 * every weight it multiplies by: base-patch16-224 with LoRA ran out of the 4 GiB heap at batch 1. TF.js tensors
 * are immutable (a variable's `assign` swaps buffers), so sharing is safe.
 */
function identityWasm(args: KernelArgs): tf.TensorInfo {
  const heap = wasmHeap(args.backend);
  const x = args.inputs.x as tf.TensorInfo;
  if (x.dtype === 'string') return (fallbacks.get('Identity') as Fallback)(args) as tf.TensorInfo;
  heap.share(x);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

const OURS: Record<string, tf.KernelFunc> = {
  Slice: sliceWasm as unknown as tf.KernelFunc,
  Unpack: unpackWasm as unknown as tf.KernelFunc,
  Identity: identityWasm as unknown as tf.KernelFunc,
};

/** Whether the wasm backend runs the kernels above (false before the wasm backend is imported). */
export function wasmKernelsReplaced(): boolean {
  return Object.entries(OURS).every(([name, f]) => tf.getKernel(name, 'wasm')?.kernelFunc === f);
}

/**
 * Installs the kernels above on the wasm backend (idempotent and cheap; called where they matter, so importing
 * the wasm backend after this module cannot undo it). Does nothing until the wasm backend is registered.
 */
export function ensureWasmKernels(): void {
  for (const [name, f] of Object.entries(OURS)) {
    const current = tf.getKernel(name, 'wasm');
    if (!current || current.kernelFunc === f) continue;
    fallbacks.set(name, current.kernelFunc as unknown as Fallback);
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel({ kernelName: name, backendName: 'wasm', kernelFunc: f });
  }
}

ensureWasmKernels();
