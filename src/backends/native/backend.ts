/**
 * The `native` backend: TF.js's cpu backend (tensors in plain typed arrays) whose heavy kernels run in C++ on
 * oneDNN. It keeps pre-packed copies of weights in C++ (see packKeyFor) and frees them with their tensor.
 */
import type * as tf from '@tensorflow/tfjs';
import { MathBackendCPU, cpuValues, silenceFirstUseNotice } from '../../internals/cpu_backend.js';
import type { NativeAddon } from './addon.js';
import { OutputPool, RecycleTracker, poolLimitBytes } from './output_pool.js';

/** A right-hand operand is packed once the same tensor has been multiplied by this many times. */
const PACK_AFTER_USES = 2;
/** Smaller operands are not worth a packed copy. */
const PACK_MIN_ELEMENTS = 4096;

interface PackState {
  id: number;
  /** uses as a plain and as a transposed operand (packed separately) */
  uses: [number, number];
  packed: boolean;
  /** whether the pages of a memory-mapped operand were dropped after packing it (plain, transposed) */
  released: [boolean, boolean];
}

export class NativeBackend extends MathBackendCPU {
  private readonly packs = new WeakMap<object, PackState>();
  private nextPackId = 1;
  private readonly pool = new OutputPool(poolLimitBytes());
  private readonly recycle = new RecycleTracker();

  constructor(readonly addon: NativeAddon) {
    super();
    silenceFirstUseNotice(this);
  }

  /**
   * A float32 array of `length` elements for a kernel to write its whole output into, recycled from a disposed
   * tensor when one fits (see output_pool.ts): its contents are stale, so the kernel must write every element.
   */
  alloc(length: number): Float32Array {
    const a = this.pool.take(length) ?? new Float32Array(length);
    this.recycle.allocated(a);
    return a;
  }

  /** Bytes of free output arrays held for reuse. */
  get pooledBytes(): number {
    return this.pool.heldBytes;
  }

  override write(
    values: Parameters<MathBackendCPU['write']>[0],
    shape: number[],
    dtype: tf.DataType,
  ): ReturnType<MathBackendCPU['write']> {
    const dataId = super.write(values, shape, dtype);
    this.recycle.adopted(dataId, values);
    return dataId;
  }

  override move(
    dataId: object,
    values: Parameters<MathBackendCPU['move']>[1],
    shape: number[],
    dtype: tf.DataType,
    refCount: number,
  ): void {
    super.move(dataId, values, shape, dtype, refCount);
    this.recycle.adopted(dataId, values);
  }

  // A cpu backend hands out the tensor's own array: once read, it is the caller's and never recycled.
  override readSync(dataId: object): ReturnType<MathBackendCPU['readSync']> {
    this.recycle.escaped(dataId);
    return super.readSync(dataId);
  }

  override read(dataId: object): ReturnType<MathBackendCPU['read']> {
    this.recycle.escaped(dataId);
    return super.read(dataId);
  }

  /** The float32 values of a tensor, in place (never write to them). */
  f32(t: tf.TensorInfo, kernel: string, name: string): Float32Array {
    const v = cpuValues(this, t);
    if (!(v instanceof Float32Array)) {
      throw new Error(
        `native ${kernel}: ${name} [${t.shape.join(',')}] must be a float32 tensor on the native backend, got ${t.dtype}`,
      );
    }
    return v;
  }

  /** A new tensor on this backend holding `values` (no copy). */
  output(values: Float32Array, shape: number[]): tf.TensorInfo {
    return this.makeTensorInfo(shape, 'float32', values);
  }

  /**
   * The key under which the addon may keep `b` pre-packed (0: do not pack). Weights are multiplied by many times and
   * activations once, so a tensor is packed from its second use on; the packed copy is freed in disposeData.
   */
  packKeyFor(b: tf.TensorInfo, elements: number, transposed: boolean): number {
    if (elements < PACK_MIN_ELEMENTS) return 0;
    let s = this.packs.get(b.dataId);
    if (s === undefined) {
      s = { id: this.nextPackId++, uses: [0, 0], packed: false, released: [false, false] };
      this.packs.set(b.dataId, s);
    }
    const uses = ++s.uses[transposed ? 1 : 0];
    if (uses < PACK_AFTER_USES) return 0;
    s.packed = true;
    return s.id;
  }

  /**
   * Called after a matmul that copied `b` into a packed layout: when `b`'s values are a memory-mapped file, its pages
   * are dropped from this process once (the packed copy serves later products; a later read faults them in again).
   * Where the library multiplies by the weight in its own layout (AVX2), nothing is copied and nothing dropped.
   */
  afterPack(b: tf.TensorInfo, values: Float32Array, transposed: boolean): void {
    const s = this.packs.get(b.dataId);
    const t = transposed ? 1 : 0;
    if (s === undefined || !s.packed || s.released[t]) return;
    s.released[t] = true;
    if (this.addon.isMapped(values)) this.addon.releasePages(values);
  }

  override disposeData(dataId: object, force = false): boolean {
    const gone = super.disposeData(dataId, force);
    if (gone) {
      const reusable = this.recycle.released(dataId);
      if (reusable !== undefined) this.pool.give(reusable);
      const s = this.packs.get(dataId);
      if (s !== undefined) {
        if (s.packed) this.addon.releasePacked(s.id);
        this.packs.delete(dataId);
      }
    }
    return gone;
  }

  override dispose(): void {
    super.dispose();
    this.pool.clear();
    this.addon.clearCaches();
  }
}
