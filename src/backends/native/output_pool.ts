/**
 * Recycled output arrays for the `native` backend's kernels.
 *
 * Every kernel output used to be a new Float32Array. V8 counts each one as external memory, and so400m's forward
 * pass allocates about 400 MB of them per image: that started 11 major garbage collections per image, whose
 * concurrent marking took a third core's worth of time from the two GEMM threads (perf, 2-vCPU AMD EPYC). An
 * array whose tensor is disposed goes back to this pool instead, and the next output of the same length reuses it.
 *
 * An array is only recycled when nothing outside the backend can still see it: it was allocated here, adopted
 * whole by exactly one tensor, never read out (`dataSync`, `data`, `bufferSync` return the array itself on a cpu
 * backend) and never viewed by another tensor (the cpu backend's Slice returns a subarray of its input).
 */

import { totalmem } from 'node:os';

const MiB = 2 ** 20;

/**
 * Bytes of free arrays kept for reuse: `SIGLIP2_NATIVE_POOL_MB` (0 turns recycling off), by default a quarter of
 * the machine's memory (at least 512 MiB). The pool only ever holds arrays of tensors already freed, so it never
 * raises the peak past what the workload itself reached; a training step frees gigabytes of activations that the
 * next step allocates again (so400m vision-lora without checkpointing: 63.0 s/step with 512 MiB, 46.6 with 6 GiB,
 * the same 12.6 GiB peak RSS).
 */
export function poolLimitBytes(
  env: NodeJS.ProcessEnv = process.env,
  machineBytes: number = totalmem(),
): number {
  const raw = env.SIGLIP2_NATIVE_POOL_MB;
  if (raw === undefined || raw === '') return Math.max(512 * MiB, Math.floor(machineBytes / 4));
  const mb = Number(raw);
  if (!(mb >= 0) || !Number.isFinite(mb)) {
    throw new Error(`SIGLIP2_NATIVE_POOL_MB must be a number of MiB >= 0, got "${raw}"`);
  }
  return mb * MiB;
}

/** Free float32 arrays by length, at most `limitBytes` in all; the longest-unused go first. */
export class OutputPool {
  private readonly free = new Map<number, Float32Array[]>();
  /** every free array, oldest first */
  private readonly order = new Set<Float32Array>();
  private bytes = 0;

  constructor(readonly limitBytes: number) {}

  /** A free array of exactly `length` elements (its contents are stale: the caller overwrites all of them). */
  take(length: number): Float32Array | undefined {
    const list = this.free.get(length);
    const a = list?.pop();
    if (a === undefined) return undefined;
    if (list!.length === 0) this.free.delete(length);
    this.order.delete(a);
    this.bytes -= a.byteLength;
    return a;
  }

  /** Keeps `a` for reuse, dropping the longest-unused free arrays while it would not fit. */
  give(a: Float32Array): void {
    if (a.byteLength === 0 || a.byteLength > this.limitBytes) return;
    while (this.bytes + a.byteLength > this.limitBytes) this.evictOldest();
    const list = this.free.get(a.length);
    if (list === undefined) this.free.set(a.length, [a]);
    else list.push(a);
    this.order.add(a);
    this.bytes += a.byteLength;
  }

  private evictOldest(): void {
    const oldest = this.order.values().next().value as Float32Array;
    this.order.delete(oldest);
    const list = this.free.get(oldest.length)!;
    list.splice(list.indexOf(oldest), 1);
    if (list.length === 0) this.free.delete(oldest.length);
    this.bytes -= oldest.byteLength;
  }

  clear(): void {
    this.free.clear();
    this.order.clear();
    this.bytes = 0;
  }

  get heldBytes(): number {
    return this.bytes;
  }
}

/**
 * Which tensors' arrays may be recycled. `allocated` marks an array handed to a kernel; `adopted` sees every array
 * a tensor is given (write/move), `escaped` every tensor read out; `released` returns the array of a disposed
 * tensor when it is safe to reuse.
 */
export class RecycleTracker {
  /** arrays allocated for a kernel and not yet given to a tensor */
  private readonly fresh = new WeakSet<ArrayBuffer>();
  /** the tensor (data id) that owns each recyclable array's buffer */
  private readonly ownerOf = new WeakMap<ArrayBuffer, object>();
  /** recyclable arrays by data id */
  private readonly recyclable = new WeakMap<object, Float32Array>();

  allocated(a: Float32Array): void {
    this.fresh.add(a.buffer as ArrayBuffer);
  }

  adopted(dataId: object, values: unknown): void {
    if (!ArrayBuffer.isView(values)) return;
    const buffer = values.buffer as ArrayBuffer;
    if (this.fresh.has(buffer)) {
      this.fresh.delete(buffer);
      if (
        values instanceof Float32Array &&
        values.byteOffset === 0 &&
        values.byteLength === buffer.byteLength
      ) {
        this.recyclable.set(dataId, values);
        this.ownerOf.set(buffer, dataId);
      }
      return;
    }
    // a second tensor over an owned buffer (a view, or the same array given twice): neither may recycle it
    const owner = this.ownerOf.get(buffer);
    if (owner !== undefined) this.escaped(owner);
  }

  escaped(dataId: object): void {
    this.untrack(dataId);
  }

  /** The array of a tensor whose data was just freed, when it can be reused. */
  released(dataId: object): Float32Array | undefined {
    return this.untrack(dataId);
  }

  /** Stops tracking a tensor's array; returns it if it was recyclable. */
  private untrack(dataId: object): Float32Array | undefined {
    const a = this.recyclable.get(dataId);
    if (a === undefined) return undefined;
    this.recyclable.delete(dataId);
    this.ownerOf.delete(a.buffer as ArrayBuffer);
    return a;
  }
}
