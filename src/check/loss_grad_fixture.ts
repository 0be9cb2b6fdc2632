import * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensors } from '../io/safetensors.js';
import { loadHfCheckpoint } from '../model/load_hf.js';
import { trainForward } from '../train/forward.js';
import { setGradientCheckpointing } from '../train/recompute.js';
import { lossAndGrads } from '../train/grads.js';
import { sigmoidLoss } from '../train/loss.js';
import { toHfTensors } from '../train/params.js';
import { type Comparison, type Tolerance, compareArrays, missingOutput } from './compare.js';
import { type CasesJson, readCases, registerFixtureKind } from './fixture.js';
import { toTensor } from './model_fixture.js';

/** A part of a gradient that is mathematically zero (round-off only): the whole tensor or a slice of its rows. */
export interface ZeroPart {
  /** `grad.<name>` */
  output: string;
  /** Flat element range [begin, end); the whole tensor when absent. */
  range?: [number, number];
}

/** Reads `output_notes.mathematically_zero_gradients`, e.g. `grad.x.in_proj_bias[48:96] (key part)`. */
export function zeroParts(cases: CasesJson): ZeroPart[] {
  const notes = (cases.output_notes ?? {}) as Record<string, unknown>;
  const list = notes.mathematically_zero_gradients;
  if (!Array.isArray(list)) return [];
  const out: ZeroPart[] = [];
  for (const item of list) {
    if (typeof item !== 'string') continue;
    const m = /^(grad\.[^[\s]+)(?:\[(\d+):(\d+)\])?/.exec(item.trim());
    if (!m)
      throw new Error(`cases.json: cannot read the zero-gradient entry ${JSON.stringify(item)}`);
    out.push({ output: m[1], range: m[2] ? [Number(m[2]), Number(m[3])] : undefined });
  }
  return out;
}

/** The absolute bound for mathematically-zero gradients (`... compare with atol 1e-6` in the notes). */
export function zeroAtol(cases: CasesJson, fallback = 1e-6): number {
  const notes = (cases.output_notes ?? {}) as Record<string, unknown>;
  const note = notes.mathematically_zero_note;
  const m = typeof note === 'string' ? /atol\s*([0-9.]+(?:e-?\d+)?)/i.exec(note) : null;
  return m ? Number(m[1]) : fallback;
}

/** The gradient tolerance of the fixture: `rtol` relative to max|grad| of each tensor (cases.json). */
export function gradTolerance(cases: CasesJson): Tolerance {
  const t = (cases.suggested_tolerance ?? {}) as Record<string, unknown>;
  return {
    atol: typeof t.atol === 'number' ? t.atol : 1e-5,
    rtol: typeof t.rtol === 'number' ? t.rtol : 1e-3,
  };
}

/**
 * Compares a gradient with its golden value the way the fixture defines it: every element within
 * `rtol * max|golden|` of that tensor (the floor `atol` applies only when the whole tensor is below it), and the
 * mathematically-zero parts within `zeroBound` absolute. `maxRel` reports `max|diff| / max|golden|`.
 */
export function compareGradient(
  name: string,
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  shape: number[],
  actualShape: number[],
  tolerance: Tolerance,
  zero: ZeroPart[],
  zeroBound: number,
): Comparison {
  const base = compareArrays(name, actual, expected, shape, { atol: 0, rtol: 0 }, actualShape);
  if (base.note) return { ...base, tolerance };
  const isZero = new Uint8Array(expected.length);
  for (const z of zero.filter((p) => p.output === name)) {
    const [b, e] = z.range ?? [0, expected.length];
    isZero.fill(1, b, Math.min(e, expected.length));
  }
  let maxRef = 0;
  for (let i = 0; i < expected.length; i++) {
    if (!isZero[i]) maxRef = Math.max(maxRef, Math.abs(expected[i]));
  }
  const bound = Math.max(tolerance.rtol * maxRef, maxRef < tolerance.atol ? tolerance.atol : 0);
  let maxAbs = 0;
  let maxZero = 0;
  let ok = true;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    if (Number.isNaN(d)) ok = false;
    if (isZero[i]) {
      maxZero = Math.max(maxZero, d);
      if (!(d <= zeroBound)) ok = false;
    } else {
      maxAbs = Math.max(maxAbs, d);
      if (!(d <= bound)) ok = false;
    }
  }
  const zeros = isZero.reduce((a, b) => a + b, 0);
  const notes: string[] = [];
  if (zeros === expected.length)
    notes.push(`mathematically zero: max |g| ${maxZero.toExponential(1)} <= ${zeroBound}`);
  else {
    notes.push(`rel. to max|grad| ${maxRef.toExponential(2)}`);
    if (zeros) notes.push(`${zeros} zero elements within ${zeroBound}`);
  }
  return {
    name,
    shape,
    maxAbs: zeros === expected.length ? maxZero : maxAbs,
    maxRel: maxRef > 0 ? maxAbs / maxRef : 0,
    ok,
    tolerance,
    note: notes.join('; '),
  };
}

/** Tolerance for the loss and logits (model outputs, elementwise). */
const OUTPUT_TOLERANCE: Tolerance = { atol: 1e-4, rtol: 1e-4 };

/**
 * Runs a loss-and-gradient fixture: loads the checkpoint, computes the sigmoid loss of the image-text pairs in
 * inputs.safetensors and d loss / d every parameter, maps each gradient to the checkpoint's name and layout and
 * compares it with `grad.<name>` in outputs.safetensors.
 */
export async function checkLossGradFixture(
  dir: string,
  opts: { gradientCheckpointing?: boolean } = {},
): Promise<Comparison[]> {
  const cases = await readCases(dir);
  const gradTol = gradTolerance(cases);
  const zero = zeroParts(cases);
  const zeroBound = zeroAtol(cases);
  const model = await loadHfCheckpoint(dir, { onUnused: () => undefined });
  if (opts.gradientCheckpointing) setGradientCheckpointing(model, true);
  const loadedInputs = await readSafetensors(join(dir, 'inputs.safetensors'));
  const expected = await readSafetensors(join(dir, 'outputs.safetensors'));
  const inputs = new Map([...loadedInputs].map(([k, v]) => [k, toTensor(v)]));
  const owned: tf.Tensor[] = [];
  try {
    const pixelValues = inputs.get('pixel_values');
    const inputIds = inputs.get('input_ids');
    if (!pixelValues || !inputIds) {
      throw new Error(`${dir}/inputs.safetensors: needs pixel_values and input_ids`);
    }
    const batch = {
      pixelValues,
      inputIds,
      pixelAttentionMask: inputs.get('pixel_attention_mask'),
      spatialShapes: inputs.get('spatial_shapes'),
    };
    const { loss, grads } = await lossAndGrads(model, batch);
    owned.push(loss, ...grads.values());
    const hfGrads = toHfTensors(model, grads);
    owned.push(...hfGrads.values());
    const logits = tf.tidy(() => {
      const out = trainForward(model, batch, { training: false });
      return {
        perText: out.logitsPerText,
        perImage: out.logitsPerText.transpose(),
        loss: sigmoidLoss(out.logitsPerText),
      };
    });
    owned.push(logits.perText, logits.perImage, logits.loss);
    const rows: Comparison[] = [];
    for (const [name, golden] of expected) {
      let actual: tf.Tensor | undefined;
      if (name === 'loss') actual = loss;
      else if (name === 'logits_per_text') actual = logits.perText;
      else if (name === 'logits_per_image') actual = logits.perImage;
      else if (name.startsWith('grad.')) actual = hfGrads.get(name.slice(5));
      if (!actual) {
        rows.push(missingOutput(name, golden.shape, OUTPUT_TOLERANCE));
        continue;
      }
      const data = await actual.data();
      // The loss is a scalar here and a [1] tensor in the reference.
      const shape = name === 'loss' && actual.rank === 0 ? golden.shape : actual.shape;
      rows.push(
        name.startsWith('grad.')
          ? compareGradient(name, data, golden.data, golden.shape, shape, gradTol, zero, zeroBound)
          : compareArrays(name, data, golden.data, golden.shape, OUTPUT_TOLERANCE, shape),
      );
    }
    // Also the gradient-free loss (training: false) equals the loss the gradient pass reports.
    const lossGolden = expected.get('loss');
    if (lossGolden) {
      rows.push(
        compareArrays(
          'loss (forward only)',
          await logits.loss.data(),
          lossGolden.data,
          lossGolden.shape,
          OUTPUT_TOLERANCE,
          lossGolden.shape,
        ),
      );
    }
    return rows;
  } finally {
    tf.dispose(owned);
    tf.dispose([...inputs.values()]);
    model.dispose();
  }
}

/** Folders whose cases.json lists a `loss` or `grad.*` output. */
function isLossGradFixture(dir: string, cases: CasesJson | undefined): boolean {
  if (!cases) return false;
  const outputs = Object.keys(cases.outputs ?? {});
  return (
    outputs.some((o) => o === 'loss' || o.startsWith('grad.')) &&
    existsSync(join(dir, 'config.json')) &&
    existsSync(join(dir, 'inputs.safetensors')) &&
    existsSync(join(dir, 'outputs.safetensors'))
  );
}

registerFixtureKind({
  name: 'loss-grad',
  detect: isLossGradFixture,
  run: (dir) => checkLossGradFixture(dir),
});
