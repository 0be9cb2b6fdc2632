/** The inputs of a parity run: a fixture's (with its golden outputs), or deterministic random ones. */
import { join } from 'node:path';
import { readCases, toleranceOf } from '../check/fixture.js';
import type { Tolerance } from '../check/compare.js';
import { readSafetensors, type LoadedTensor } from '../io/safetensors.js';
import { HF_OUTPUT_NAMES } from '../model/siglip_model.js';
import type { SiglipConfig } from '../model/config.js';
import { seededRandom } from '../util/random.js';
import type { NamedArray, ParityInputs, ParityOutputs } from './types.js';

/**
 * Deterministic inputs: 2 images and 3 texts of random ids. Fixed resolution: pixels in [-1, 1] at the model's
 * image size. NaFlex: one image on the full position grid (g x g patches) and one of (g/2) x (g+1) patches
 * (height downscaled, width upscaled) padded to the same length, with its mask and spatial shapes.
 */
export function randomInputs(config: SiglipConfig, seed = 1): ParityInputs {
  const v = config.visionConfig;
  const t = config.textConfig;
  if (!v || !t) throw new Error('parity: the model needs both towers');
  const r = seededRandom(seed);
  const L = t.maxPositionEmbeddings;
  const inputIds = {
    data: new Int32Array(3 * L).map(() => Math.floor(r() * t.vocabSize)),
    shape: [3, L],
  };
  if (v.modelType === 'siglip_vision_model') {
    const size = v.imageSize;
    const px = new Float32Array(2 * v.numChannels * size * size).map(() => r() * 2 - 1);
    return { pixelValues: { data: px, shape: [2, v.numChannels, size, size] }, inputIds };
  }
  const g = Math.round(Math.sqrt(v.numPatches));
  const shapes: [number, number][] = [
    [g, g],
    [Math.max(1, Math.floor(g / 2)), g + 1],
  ];
  const maxPatches = Math.max(v.numPatches, ...shapes.map(([h, w]) => h * w));
  const width = v.numChannels * v.patchSize * v.patchSize;
  const px = new Float32Array(2 * maxPatches * width);
  const mask = new Int32Array(2 * maxPatches);
  shapes.forEach(([h, w], b) => {
    for (let i = 0; i < h * w; i++) {
      mask[b * maxPatches + i] = 1;
      const row = (b * maxPatches + i) * width;
      for (let j = 0; j < width; j++) px[row + j] = r() * 2 - 1;
    }
  });
  return {
    pixelValues: { data: px, shape: [2, maxPatches, width] },
    pixelAttentionMask: { data: mask, shape: [2, maxPatches] },
    spatialShapes: { data: Int32Array.from(shapes.flat()), shape: [2, 2] },
    inputIds,
  };
}

function named(t: LoadedTensor): NamedArray {
  return {
    data: t.data instanceof Float32Array ? t.data : Int32Array.from(t.data as ArrayLike<number>),
    shape: t.shape,
  };
}

export interface FixtureCase {
  inputs: ParityInputs;
  golden: ParityOutputs;
  tolerance: Tolerance;
}

/**
 * A fixture folder's inputs (`pixel_values`, `input_ids`, and for NaFlex `pixel_attention_mask` and
 * `spatial_shapes`), its golden main outputs and its suggested tolerance.
 */
export async function readFixtureCase(dir: string): Promise<FixtureCase> {
  const file = join(dir, 'inputs.safetensors');
  const ins = await readSafetensors(file);
  const px = ins.get('pixel_values');
  const ids = ins.get('input_ids');
  if (!px || !ids) throw new Error(`${file}: needs pixel_values and input_ids`);
  const mask = ins.get('pixel_attention_mask');
  const shapes = ins.get('spatial_shapes');
  if ((mask === undefined) !== (shapes === undefined)) {
    throw new Error(`${file}: a NaFlex fixture needs both pixel_attention_mask and spatial_shapes`);
  }
  const inputs: ParityInputs = { pixelValues: named(px), inputIds: named(ids) };
  if (mask && shapes) {
    inputs.pixelAttentionMask = named(mask);
    inputs.spatialShapes = named(shapes);
  }
  const outs = await readSafetensors(join(dir, 'outputs.safetensors'));
  const golden: ParityOutputs = {};
  for (const name of HF_OUTPUT_NAMES) {
    const o = outs.get(name);
    if (o) golden[name] = named(o);
  }
  return { inputs, golden, tolerance: toleranceOf(await readCases(dir)) };
}
