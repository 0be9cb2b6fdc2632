import * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type LoadedTensor, readSafetensors } from '../io/safetensors.js';
import { loadHfCheckpoint } from '../model/load_hf.js';
import { type SiglipModel, type SiglipOutputs, disposeOutputs } from '../model/siglip_model.js';
import type { TowerOutputs } from '../model/tower_outputs.js';
import { type Comparison, compareArrays, missingOutput } from './compare.js';
import { type CasesJson, readCases, registerFixtureKind, toleranceOf } from './fixture.js';

/** Inputs of a model fixture as TF.js tensors, keyed by their names in inputs.safetensors. */
export type FixtureInputs = Map<string, tf.Tensor>;

/**
 * Outputs a model fixture may name beyond the standard ones (e.g. NaFlex's resized position embeddings).
 * A provider returns the tensor for a name it knows, or undefined.
 */
export type ExtraOutputProvider = (
  name: string,
  model: SiglipModel,
  inputs: FixtureInputs,
) => tf.Tensor | undefined;

const extraProviders: ExtraOutputProvider[] = [];

export function registerExtraOutputs(provider: ExtraOutputProvider): void {
  extraProviders.push(provider);
}

export function toTensor(t: LoadedTensor): tf.Tensor {
  const dtype = t.data instanceof Float32Array ? 'float32' : 'int32';
  const data = t.data instanceof Uint8Array ? Int32Array.from(t.data) : t.data;
  return tf.tensor(data, t.shape, dtype);
}

function towerField(o: TowerOutputs | undefined, field: string): tf.Tensor | undefined {
  if (!o) return undefined;
  if (field === 'last_hidden_state') return o.lastHiddenState;
  if (field === 'pooler_output') return o.poolerOutput;
  const m = /^hidden_states\.(\d+)$/.exec(field);
  if (m) return o.hiddenStates?.[Number(m[1])];
  return undefined;
}

function standardOutput(
  name: string,
  out: SiglipOutputs,
  masked: TowerOutputs | undefined,
): tf.Tensor | undefined {
  switch (name) {
    case 'logits_per_image':
      return out.logitsPerImage;
    case 'logits_per_text':
      return out.logitsPerText;
    case 'image_embeds':
      return out.imageEmbeds;
    case 'text_embeds':
      return out.textEmbeds;
  }
  const dot = name.indexOf('.');
  if (dot < 0) return undefined;
  const tower = name.slice(0, dot);
  const field = name.slice(dot + 1);
  if (tower === 'vision') return towerField(out.vision, field);
  if (tower === 'text') return towerField(out.text, field);
  if (tower === 'text_with_attention_mask') return towerField(masked, field);
  return undefined;
}

/** Runs a model fixture folder (config.json + model.safetensors + inputs/outputs.safetensors + cases.json). */
export async function checkModelFixture(dir: string): Promise<Comparison[]> {
  const cases = await readCases(dir);
  const tolerance = toleranceOf(cases);
  const model = await loadHfCheckpoint(dir, { onUnused: () => undefined });
  const loadedInputs = await readSafetensors(join(dir, 'inputs.safetensors'));
  const expected = await readSafetensors(join(dir, 'outputs.safetensors'));
  const inputs: FixtureInputs = new Map([...loadedInputs].map(([k, v]) => [k, toTensor(v)]));
  let out: SiglipOutputs = {};
  let masked: TowerOutputs | undefined;
  try {
    const wantsHidden = [...expected.keys()].some((k) => k.includes('hidden_states'));
    out = model.forward({
      pixelValues: inputs.get('pixel_values'),
      pixelAttentionMask: inputs.get('pixel_attention_mask'),
      spatialShapes: inputs.get('spatial_shapes'),
      inputIds: inputs.get('input_ids'),
      attentionMask: inputs.get('attention_mask'),
      outputHiddenStates: wantsHidden,
    });
    const extraMask = inputs.get('attention_mask_for_extra');
    const ids = inputs.get('input_ids');
    if (extraMask && ids && model.text) {
      masked = model.text.predict(ids, {
        attentionMask: extraMask,
        outputHiddenStates: wantsHidden,
      });
    }
    const rows: Comparison[] = [];
    for (const [name, golden] of expected) {
      const actual =
        standardOutput(name, out, masked) ??
        extraProviders.map((p) => p(name, model, inputs)).find((t) => t !== undefined);
      if (!actual) {
        rows.push(missingOutput(name, golden.shape, tolerance));
        continue;
      }
      rows.push(
        compareArrays(
          name,
          await actual.data(),
          golden.data,
          golden.shape,
          tolerance,
          actual.shape,
        ),
      );
      if (!isOwned(actual, out, masked)) actual.dispose();
    }
    return rows;
  } finally {
    disposeOutputs(out);
    if (masked) disposeOutputs({ text: masked });
    tf.dispose([...inputs.values()]);
    model.dispose();
  }
}

function isOwned(t: tf.Tensor, out: SiglipOutputs, masked: TowerOutputs | undefined): boolean {
  const all: (tf.Tensor | undefined)[] = [
    out.logitsPerImage,
    out.logitsPerText,
    out.imageEmbeds,
    out.textEmbeds,
  ];
  for (const o of [out.vision, out.text, masked]) {
    if (o) all.push(o.lastHiddenState, o.poolerOutput, ...(o.hiddenStates ?? []));
  }
  return all.includes(t);
}

function isModelFixture(dir: string, cases: CasesJson | undefined): boolean {
  if (!cases || typeof cases.model_class !== 'string') return false;
  const outputs = Object.keys(cases.outputs ?? {});
  const training = outputs.some((o) => o === 'loss' || o.startsWith('grad.'));
  return (
    !training &&
    existsSync(join(dir, 'config.json')) &&
    existsSync(join(dir, 'inputs.safetensors')) &&
    existsSync(join(dir, 'outputs.safetensors'))
  );
}

registerFixtureKind({ name: 'model', detect: isModelFixture, run: checkModelFixture });
