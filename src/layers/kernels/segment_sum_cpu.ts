import * as tf from '@tensorflow/tfjs';

interface CpuBackendLike {
  readSync(dataId: object): ArrayLike<number>;
  makeTensorInfo(
    shape: number[],
    dtype: tf.DataType,
    values: Float32Array | Int32Array,
  ): tf.TensorInfo;
}

/**
 * `UnsortedSegmentSum` for the cpu backend in one pass: `out[ids[i], ...] += x[i, ...]`. It is the gradient of
 * `gather` (the token-embedding lookup). TF.js 4.22's cpu kernel builds a mask and a full product per segment,
 * i.e. `numSegments` passes over the gradient: 13.6 of 15.6 s of a training step of the tiny model (1000-entry
 * vocabulary), and hopeless for SigLIP 2's 256000 entries.
 */
function unsortedSegmentSumCpu(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}): tf.TensorInfo {
  const backend = args.backend as CpuBackendLike;
  const x = args.inputs.x as tf.TensorInfo;
  const ids = args.inputs.segmentIds as tf.TensorInfo;
  const numSegments = Number(args.attrs?.numSegments);
  const rowShape = x.shape.slice(ids.shape.length);
  const rowSize = rowShape.reduce((a, b) => a * b, 1);
  const out =
    x.dtype === 'int32'
      ? new Int32Array(numSegments * rowSize)
      : new Float32Array(numSegments * rowSize);
  const xv = backend.readSync(x.dataId);
  const iv = backend.readSync(ids.dataId);
  for (let i = 0; i < iv.length; i++) {
    const seg = iv[i];
    if (seg < 0 || seg >= numSegments) continue;
    const src = i * rowSize;
    const dst = seg * rowSize;
    for (let j = 0; j < rowSize; j++) out[dst + j] += xv[src + j];
  }
  return backend.makeTensorInfo([numSegments, ...rowShape], x.dtype, out);
}

/** Puts the one-pass `UnsortedSegmentSum` in place of the cpu backend's (idempotent). */
export function registerCpuSegmentSum(): void {
  const current = tf.getKernel('UnsortedSegmentSum', 'cpu');
  if (current?.kernelFunc === (unsortedSegmentSumCpu as unknown as tf.KernelFunc)) return;
  if (current) tf.unregisterKernel('UnsortedSegmentSum', 'cpu');
  tf.registerKernel({
    kernelName: 'UnsortedSegmentSum',
    backendName: 'cpu',
    kernelFunc: unsortedSegmentSumCpu as unknown as tf.KernelFunc,
  });
}

registerCpuSegmentSum();
