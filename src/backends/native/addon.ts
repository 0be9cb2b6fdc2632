/**
 * Loading the compiled addon (native/build/Release/siglip2_native.node, built by `npm run build:native`) and its
 * JavaScript-side signature. Node only.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Set to the path of a siglip2_native.node to load that one instead. */
export const NATIVE_ADDON_ENV = 'SIGLIP2_NATIVE_ADDON';

export const NATIVE_BUILD_HINT =
  'apt-get install g++ make libdnnl-dev libopenblas-dev, then npm run build:native';

/** Activation codes of the addon's matmul (the fused ones). */
export const ACTIVATIONS = {
  linear: 0,
  relu: 1,
  relu6: 2,
  elu: 3,
  sigmoid: 4,
  leakyrelu: 5,
  geluTanh: 6,
} as const;

export interface NativeInfo {
  library: string;
  version: string;
  isa: string;
  threads: number;
  threading: string;
  blas: string;
  /**
   * The default setting runs products of fewer output rows than this on OpenBLAS here (1,024 where oneDNN runs
   * AVX2 or less); 0 where it runs every product on oneDNN (where oneDNN runs AVX-512).
   */
  openBlasBelowRows: number;
}

/**
 * The native matmul's GEMM library: unset (or `default`: where oneDNN runs AVX2, OpenBLAS for products under 1,024
 * output rows and oneDNN for the rest; where it runs AVX-512, oneDNN for all), `onednn`, `openblas` (wherever it
 * can run the product), or `auto` (measured per problem). native/src/gemm_choice.cc.
 */
export const NATIVE_GEMM_ENV = 'SIGLIP2_NATIVE_GEMM';

/** Which library runs the native matmuls under SIGLIP2_NATIVE_GEMM, for the backend's reason line. */
export function gemmPolicy(
  info: Pick<NativeInfo, 'blas' | 'isa' | 'openBlasBelowRows'>,
  env: NodeJS.ProcessEnv = process.env,
): string {
  const openblas = info.blas.split(' ').slice(0, 2).join(' ');
  const v = env[NATIVE_GEMM_ENV];
  if (v === undefined || v === '' || v === 'default') {
    const below = info.openBlasBelowRows;
    return below > 0
      ? `GEMMs: ${openblas} under ${below.toLocaleString('en-US')} rows, oneDNN above`
      : `GEMMs: oneDNN (with ${info.isa} it is ahead of ${openblas} at every size)`;
  }
  if (v === 'onednn') return `GEMMs: oneDNN (${NATIVE_GEMM_ENV}=onednn)`;
  if (v === 'openblas') return `GEMMs: ${openblas} where it can (${NATIVE_GEMM_ENV}=openblas)`;
  if (v === 'auto') return `GEMMs: measured per problem (${NATIVE_GEMM_ENV}=auto)`;
  return `GEMMs: ${NATIVE_GEMM_ENV}=${v} is not one of default, onednn, openblas, auto`;
}

/** One measured matmul problem and the library that runs it. */
export interface GemmChoice {
  shape: string;
  packed: boolean;
  library: 'onednn' | 'openblas';
  onednnGflops: number;
  openblasGflops: number;
  threads: number;
}

/** The addon's functions; every one validates its arguments and throws an Error naming the kernel and shapes. */
export interface NativeAddon {
  info(): NativeInfo;
  setThreads(n: number): void;
  releasePacked(key: number): number;
  /** Cached weights and primitives, and the bytes the attention keeps between calls (freed above 4 MiB a thread). */
  cacheStats(): {
    packed: number;
    primitives: number;
    packedBytes: number;
    attentionScratchBytes: number;
    encoderLayerScratchBytes: number;
    /** Encoder layers run so far as one parallel region (every product on OpenBLAS, the attention per head). */
    encoderLayerTeamCalls: number;
  };
  clearCaches(): void;
  matmul(
    a: Float32Array,
    b: Float32Array,
    out: Float32Array,
    batchA: number,
    batchB: number,
    m: number,
    k: number,
    n: number,
    transposeA: boolean,
    transposeB: boolean,
    bias: Float32Array | null,
    activation: number,
    alpha: number,
    packKey: number,
    /** a dense `[batch, m, n]` added to the result last (linear activation only) */
    residual?: Float32Array | null,
  ): boolean;
  /**
   * The GEMM library chosen for each matmul problem measured so far under SIGLIP2_NATIVE_GEMM=auto (gemm_choice.cc:
   * the first calls of a problem are timed on oneDNN and OpenBLAS).
   */
  gemmChoices(): GemmChoice[];
  /** Forgets the measured choices (the next call of each problem measures again). */
  clearGemmChoices(): void;
  /** The default setting's library for a product of `rows` output rows and rank `rank` where oneDNN runs `isa`
   * (dnnl::cpu_isa's names: 'avx2', 'avx512_core', ...); for tests. */
  defaultGemmFor(rows: number, rank: number, isa: string): 'openblas' | 'onednn';
  matmulImpl(m: number, k: number, n: number, transposeA: boolean, transposeB: boolean): string;
  layerNorm(
    x: Float32Array,
    gamma: Float32Array,
    beta: Float32Array,
    out: Float32Array,
    rows: number,
    cols: number,
    epsilon: number,
  ): void;
  layerNormBackward(
    x: Float32Array,
    gamma: Float32Array,
    dy: Float32Array,
    dx: Float32Array | null,
    dgamma: Float32Array | null,
    dbeta: Float32Array | null,
    rows: number,
    cols: number,
    epsilon: number,
  ): void;
  geluTanh(x: Float32Array, out: Float32Array, size: number): void;
  geluTanhBackward(x: Float32Array, dy: Float32Array, dx: Float32Array, size: number): void;
  softmax(logits: Float32Array, out: Float32Array, rows: number, cols: number): void;
  attention(
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    mask: Float32Array | null,
    out: Float32Array,
    batch: number,
    queries: number,
    keys: number,
    heads: number,
    headDim: number,
    scale: number,
  ): void;
  attentionBackward(
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    mask: Float32Array | null,
    dy: Float32Array,
    dq: Float32Array,
    dk: Float32Array,
    dv: Float32Array,
    batch: number,
    queries: number,
    keys: number,
    heads: number,
    headDim: number,
    scale: number,
  ): void;
  /**
   * One SigLIP encoder layer at inference (native/src/encoder_layer.cc): `h = x + out_proj(attention(ln1(x)))`,
   * `out = h + fc2(geluTanh(fc1(ln2(h))))`, every linear with its bias. x and out `[batch, tokens, hidden]`;
   * mask the additive `[batch, tokens]` or null; packKeys for q, k, v, out_proj, fc1, fc2 (as matmul's). Returns a
   * bit per product (same order) set when that call copied its kernel into a packed layout.
   */
  encoderLayer(
    x: Float32Array,
    ln1Gamma: Float32Array,
    ln1Beta: Float32Array,
    qKernel: Float32Array,
    qBias: Float32Array,
    kKernel: Float32Array,
    kBias: Float32Array,
    vKernel: Float32Array,
    vBias: Float32Array,
    oKernel: Float32Array,
    oBias: Float32Array,
    ln2Gamma: Float32Array,
    ln2Beta: Float32Array,
    fc1Kernel: Float32Array,
    fc1Bias: Float32Array,
    fc2Kernel: Float32Array,
    fc2Bias: Float32Array,
    mask: Float32Array | null,
    out: Float32Array,
    batch: number,
    tokens: number,
    hidden: number,
    heads: number,
    intermediate: number,
    epsilon: number,
    scale: number,
    packKeys: number[],
  ): number;
  /** x of `shape` (rank 1-6) permuted by `perm` into out; impl 0 default (oneDNN reorder), 1 runs / tiled loop, 2 oneDNN reorder. */
  transpose(
    x: Float32Array | Int32Array,
    out: Float32Array | Int32Array,
    shape: number[],
    perm: number[],
    impl: 0 | 1 | 2,
  ): void;
  /**
   * out = a op b (op 0 Add, 1 Sub, 2 Multiply, 3 RealDiv; int32 for 0-2) with out viewed as [outer, inner] and
   * each operand read per its mode (BROADCAST in elementwise_kernels.ts: 0 full, 1 row, 2 column, 3 scalar).
   */
  binary(
    op: number,
    a: Float32Array | Int32Array,
    b: Float32Array | Int32Array,
    out: Float32Array | Int32Array,
    outer: number,
    inner: number,
    modeA: number,
    modeB: number,
  ): void;
  /** x viewed as [outer, mid, inner] summed (or averaged) over mid into out [outer, inner]. */
  reduceSum(
    x: Float32Array,
    out: Float32Array,
    outer: number,
    mid: number,
    inner: number,
    mean: boolean,
  ): void;
  /** One AdamW step into new arrays (see src/train/adamw_kernel.ts). */
  adamw(
    param: Float32Array,
    grad: Float32Array,
    m: Float32Array,
    v: Float32Array,
    paramOut: Float32Array,
    mOut: Float32Array,
    vOut: Float32Array,
    size: number,
    lr: number,
    beta1: number,
    beta2: number,
    epsilon: number,
    bc1: number,
    bc2: number,
    decay: number,
  ): void;
  /**
   * Best seconds of one [m,k]x[k,n] product: library 0 oneDNN, 1 oneDNN with packed weights, 2 OpenBLAS on its own
   * threads, 3 OpenBLAS on one thread per OpenMP thread over a split of the product (how the backend runs it).
   */
  benchSgemm(m: number, k: number, n: number, library: 0 | 1 | 2 | 3, reps: number): number;
  /**
   * Maps byte ranges of files, concatenated, as one private copy-on-write region (native/src/mmap.cc), unmapped
   * when the returned ArrayBuffer is garbage-collected. Every range after the first must start on a page boundary.
   * `random`: read at scattered rows (a token table): no readahead and no huge-page mappings.
   */
  mapFiles(
    paths: string[],
    offsets: number[],
    lengths: number[],
    elementBytes: number,
    random?: boolean,
  ): ArrayBuffer;
  /** Whether a typed array's bytes lie in a region made by mapFiles. */
  isMapped(values: ArrayBufferView): boolean;
  /** Drops the mapped (never written) pages of `values` from this process; returns the bytes dropped. */
  releasePages(values: ArrayBufferView): number;
  /** Regions made by mapFiles and still alive, their bytes, and the page size ranges must start on. */
  mappedStats(): { regions: number; bytes: number; pageSize: number };
}

/** Where the built addon is expected (the package root's native/build/Release). */
export function nativeAddonPath(): string {
  const override = process.env[NATIVE_ADDON_ENV];
  if (override !== undefined && override !== '') return resolve(override);
  // dist/src/backends/native/addon.js -> package root
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
  return join(root, 'native', 'build', 'Release', 'siglip2_native.node');
}

let cached: NativeAddon | string | undefined;

/**
 * How idle OpenMP threads wait between kernels, as libgomp was told when the addon loaded: `passive` (sleep at once;
 * the default here) or a spin. Spinning saves the wake-up of a sleeping thread at every parallel region, about 1,000
 * per so400m image: 11 % faster on a dedicated 2-vCPU machine, 3x slower for a tiny model when other processes
 * want the cores (both measured in the README). `GOMP_SPINCOUNT=300000` (libgomp's own default, a few ms) opts in.
 */
export function openmpWaits(env: NodeJS.ProcessEnv = process.env): string {
  if (env.GOMP_SPINCOUNT !== undefined) return `spin (GOMP_SPINCOUNT=${env.GOMP_SPINCOUNT})`;
  const policy = env.OMP_WAIT_POLICY ?? 'passive';
  return policy.toLowerCase() === 'passive' ? 'passive' : `OMP_WAIT_POLICY=${policy}`;
}

/** The addon, or a one-line reason it cannot be loaded (with what to install). */
export function loadNativeAddon(): NativeAddon | string {
  if (cached !== undefined) return cached;
  const path = nativeAddonPath();
  if (!existsSync(path)) {
    cached = `the native addon is not built (${path} missing); ${NATIVE_BUILD_HINT}`;
    return cached;
  }
  // OpenMP threads that spin while idle (libgomp's default) collapse when the machine is shared: a tiny model's
  // forward pass took 3.2 s instead of 0.11 s on 2 busy cores. Sleeping waits unless the user chose a policy or a
  // spin count (see openmpWaits); libgomp reads these when the addon loads it.
  if (process.env.GOMP_SPINCOUNT === undefined) process.env.OMP_WAIT_POLICY ??= 'passive';
  try {
    const require = createRequire(import.meta.url);
    cached = require(path) as NativeAddon;
  } catch (e) {
    cached = `the native addon failed to load (${(e as Error).message.split('\n')[0]}); ${NATIVE_BUILD_HINT}`;
  }
  return cached;
}
