import * as tf from '@tensorflow/tfjs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Comparison, compareArrays, type Tolerance } from '../../src/check/compare.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { toTensor } from '../../src/check/model_fixture.js';
import { disposeOutputs, outputsByHfName, type SiglipModel } from '../../src/model/siglip_model.js';
import { fixture } from '../helpers/fixtures.js';

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `siglip2-${prefix}-`));
}

/** Runs the siglip_tiny fixture inputs through a model and compares every output it computes. */
export async function compareWithFixture(
  model: SiglipModel,
  tolerance: Tolerance,
): Promise<Comparison[]> {
  const inputs = await readSafetensors(fixture('siglip_tiny', 'inputs.safetensors'));
  const expected = await readSafetensors(fixture('siglip_tiny', 'outputs.safetensors'));
  const pixelValues = toTensor(inputs.get('pixel_values')!);
  const inputIds = toTensor(inputs.get('input_ids')!);
  const out = model.forward({
    pixelValues: model.vision ? pixelValues : undefined,
    inputIds: model.text ? inputIds : undefined,
  });
  try {
    const actual = outputsByHfName(out);
    const rows: Comparison[] = [];
    for (const [name, t] of Object.entries(actual)) {
      const golden = expected.get(name)!;
      rows.push(compareArrays(name, t.dataSync(), golden.data, golden.shape, tolerance, t.shape));
    }
    return rows;
  } finally {
    disposeOutputs(out);
    tf.dispose([pixelValues, inputIds]);
  }
}

/** Largest absolute error over comparisons. */
export function maxAbs(rows: Comparison[]): number {
  return Math.max(...rows.map((r) => r.maxAbs));
}
