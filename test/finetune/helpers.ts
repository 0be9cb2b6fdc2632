import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeShapesModel, writeShapesSplit } from '../../examples/shapes_data.js';
import { DEFAULT_SETTINGS, type FinetuneSettings } from '../../src/finetune/run_config.js';
import { TIMING_FIELDS, type MetricsRecord } from '../../src/finetune/metrics_log.js';
import { fixture } from '../helpers/fixtures.js';

export interface ShapesSetup {
  dir: string;
  model: string;
  trainCsv: string;
  valCsv: string;
  trainFolder: string;
  valFolder: string;
}

let cached: Promise<ShapesSetup> | undefined;

/**
 * Generated coloured-shapes data (96 training pairs, 24 validation pairs) as PNG files with CSVs and class
 * folders, and the siglip_tiny fixture checkpoint with a tokenizer for the captions' words. Made once per process.
 */
export function shapesSetup(): Promise<ShapesSetup> {
  cached ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'siglip2-finetune-'));
    const train = await writeShapesSplit(dir, 'train', 4, 1);
    const val = await writeShapesSplit(dir, 'val', 1, 1001);
    const model = await writeShapesModel(join(dir, 'model'), fixture('siglip_tiny'));
    return {
      dir,
      model,
      trainCsv: train.csv,
      valCsv: val.csv,
      trainFolder: train.folder,
      valFolder: val.folder,
    };
  })();
  return cached;
}

/** Settings for a fast tiny run. */
export function tinySettings(
  s: ShapesSetup,
  over: Partial<FinetuneSettings> = {},
): FinetuneSettings {
  return {
    ...DEFAULT_SETTINGS,
    model: s.model,
    train: s.trainCsv,
    val: s.valCsv,
    batchSize: 24,
    lr: 5e-3,
    warmup: 2,
    ...over,
  };
}

/** metrics.jsonl without the wall-clock fields. */
export function readMetrics(out: string): MetricsRecord[] {
  return readFileSync(join(out, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => {
      const r = JSON.parse(l) as Record<string, unknown>;
      for (const k of TIMING_FIELDS) delete r[k];
      return r as unknown as MetricsRecord;
    });
}

/** The siglip2_naflex_tiny fixture checkpoint with the shapes tokenizer and a NaFlex preprocessor (16 patches). */
export async function naflexShapesModel(s: ShapesSetup): Promise<string> {
  const dir = join(s.dir, 'naflex-model');
  mkdirSync(dir, { recursive: true });
  for (const f of ['config.json', 'model.safetensors']) {
    copyFileSync(fixture('siglip2_naflex_tiny', f), join(dir, f));
  }
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) {
    copyFileSync(join(s.model, f), join(dir, f));
  }
  writeFileSync(
    join(dir, 'preprocessor_config.json'),
    JSON.stringify({
      image_processor_type: 'Siglip2ImageProcessor',
      do_resize: true,
      do_rescale: true,
      do_normalize: true,
      resample: 2,
      rescale_factor: 1 / 255,
      image_mean: [0.5, 0.5, 0.5],
      image_std: [0.5, 0.5, 0.5],
      patch_size: 16,
      max_num_patches: 16,
    }),
  );
  return dir;
}
