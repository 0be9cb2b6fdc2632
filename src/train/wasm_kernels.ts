import * as tf from '@tensorflow/tfjs';
import { wasmHeap } from '../internals/tfjs.js';
import { ensureWasmKernels } from '../layers/kernels/wasm_kernels.js';

/**
 * `UnsortedSegmentSum` for the wasm backend, which lacks it in TF.js 4.22. It is the gradient of `gather`
 * (the token-embedding lookup), so without it the text tower cannot be trained on wasm. Computed in JS on the
 * wasm heap: `out[ids[i], ...] += x[i, ...]`.
 */
function unsortedSegmentSumWasm(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}): tf.TensorInfo {
  const heap = wasmHeap(args.backend);
  const x = args.inputs.x as tf.TensorInfo;
  const ids = args.inputs.segmentIds as tf.TensorInfo;
  const numSegments = Number(args.attrs?.numSegments);
  const idRank = ids.shape.length;
  const rowShape = x.shape.slice(idRank);
  const rowSize = rowShape.reduce((a, b) => a * b, 1);
  const out = heap.output([numSegments, ...rowShape], x.dtype);
  const o = heap.view(out);
  o.fill(0);
  const xv = heap.read(x);
  const iv = heap.read(ids);
  for (let i = 0; i < iv.length; i++) {
    const seg = iv[i];
    if (seg < 0 || seg >= numSegments) continue;
    const src = i * rowSize;
    const dst = seg * rowSize;
    for (let j = 0; j < rowSize; j++) o[dst + j] += xv[src + j];
  }
  return out;
}

/**
 * Registers the training kernel the wasm backend lacks, and the memory- and copy-saving kernels of
 * src/layers/kernels/wasm_kernels.ts (idempotent; called again by
 * `lossAndGrads`, so importing the wasm backend after this module cannot undo it).
 */
export function registerWasmTrainingKernels(): void {
  if (!tf.getKernel('UnsortedSegmentSum', 'wasm')) {
    tf.registerKernel({
      kernelName: 'UnsortedSegmentSum',
      backendName: 'wasm',
      kernelFunc: unsortedSegmentSumWasm as unknown as tf.KernelFunc,
    });
  }
  ensureWasmKernels();
}

registerWasmTrainingKernels();
