/** The data a parity run passes around: plain arrays, so they cross into a browser page unchanged. */
import type { Comparison, Tolerance } from '../check/compare.js';
import type { ParityBackend } from './run.js';

export interface NamedArray {
  /** Float32Array for float32 tensors, Int32Array for int32 ones. */
  data: Float32Array | Int32Array;
  shape: number[];
}

/** The model inputs, named as the fields of `SiglipInputs`. */
export interface ParityInputs {
  /** Fixed resolution `[B, C, H, W]`; NaFlex `[B, maxPatches, C*p*p]`. */
  pixelValues: NamedArray;
  /** NaFlex only: `[B, maxPatches]`, 1 for a patch, 0 for padding. */
  pixelAttentionMask?: NamedArray;
  /** NaFlex only: `[B, 2]` patches per image (h, w). */
  spatialShapes?: NamedArray;
  /** `[B_text, L]` token ids. */
  inputIds: NamedArray;
}

/** Output name -> values, names as in the fixtures (`logits_per_image`, `vision.pooler_output`…). */
export type ParityOutputs = Record<string, NamedArray>;

/**
 * How a backend's run went: `ok` (outputs computed), `unavailable` (the backend cannot run here: a package,
 * adapter or browser is missing) or `failed` (it started and then broke).
 */
export type RunStatus = 'ok' | 'unavailable' | 'failed';

export interface BackendRun {
  backend: ParityBackend;
  status: RunStatus;
  /** The one-line backend report, or why it could not run. */
  reason: string;
  /** Present when status is `ok`. */
  outputs?: ParityOutputs;
  seconds: number;
}

export interface ParityRow {
  output: string;
  a: string;
  b: string;
  comparison: Comparison;
}

export interface ParityReport {
  model: string;
  inputs: string;
  tolerance: Tolerance;
  runs: BackendRun[];
  rows: ParityRow[];
  /** The backends asked for that could not run here. */
  unavailable: ParityBackend[];
  /** Every comparison within tolerance, no run failed, and no backend unavailable (unless allowed). */
  ok: boolean;
}
