// Writes the coloured-shapes task as files a user would have: PNG images with a captions CSV (or a folder of
// <colour>/<image>), and a tiny SigLIP checkpoint folder (config.json, model.safetensors, preprocessor and a
// word-level tokenizer for the task's words), so `siglip2 finetune` can be tried in a minute on a CPU.
//
//   node dist/examples/shapes_data.js <dir> [--copies 8] [--val-copies 2] [--seed 1] [--weights <hf folder>]
//   -> <dir>/train.csv, <dir>/val.csv, <dir>/images/*.png, <dir>/folders/{train,val}/<shape>/*.png, <dir>/model/
import * as tf from '@tensorflow/tfjs';
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { exportHf } from '../src/train/export_hf.js';
import { seededRandom } from '../src/util/random.js';
import { allCaptions, drawShape, seededTinyModel } from './finetune_shapes.js';
import { wordTokenizerJson } from './word_tokenizer.js';

const SIZE = 64;
/** Every word of the captions and of the class-folder template "a photo of {}". */
export const SHAPE_WORDS = [
  'a',
  'photo',
  'of',
  'small',
  'large',
  'red',
  'green',
  'blue',
  'yellow',
  'circle',
  'square',
  'triangle',
];

/** A word-level `tokenizer.json` for the shapes words: <pad>=0, </s>=1 appended, <unk>=2, words from 3. */
export function shapesTokenizerJson(): Record<string, unknown> {
  return wordTokenizerJson(SHAPE_WORDS);
}

const TOKENIZER_CONFIG = {
  tokenizer_class: 'PreTrainedTokenizerFast',
  pad_token: '<pad>',
  eos_token: '</s>',
  unk_token: '<unk>',
  model_max_length: 16,
};

const PREPROCESSOR = {
  image_processor_type: 'SiglipImageProcessor',
  do_resize: true,
  do_rescale: true,
  do_normalize: true,
  resample: 2,
  rescale_factor: 1 / 255,
  image_mean: [0.5, 0.5, 0.5],
  image_std: [0.5, 0.5, 0.5],
  size: { height: SIZE, width: SIZE },
};

/**
 * A tiny checkpoint folder for the task: the weights of `weightsFrom` (a Hugging Face folder of the siglip_tiny
 * shape) or, without it, seeded random weights; plus the shapes tokenizer and a 64x64 preprocessor config.
 */
export async function writeShapesModel(dir: string, weightsFrom?: string): Promise<string> {
  mkdirSync(dir, { recursive: true });
  if (weightsFrom) {
    copyFileSync(join(weightsFrom, 'config.json'), join(dir, 'config.json'));
    copyFileSync(join(weightsFrom, 'model.safetensors'), join(dir, 'model.safetensors'));
  } else {
    const model = seededTinyModel();
    await exportHf(model, dir);
    model.dispose();
  }
  writeFileSync(join(dir, 'preprocessor_config.json'), JSON.stringify(PREPROCESSOR, null, 2));
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(shapesTokenizerJson()));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(TOKENIZER_CONFIG, null, 2));
  return dir;
}

async function writePng(path: string, chw: Float32Array): Promise<void> {
  const plane = SIZE * SIZE;
  const rgb = Buffer.alloc(plane * 3);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) rgb[3 * i + c] = Math.round(((chw[c * plane + i] + 1) / 2) * 255);
  }
  await sharp(rgb, { raw: { width: SIZE, height: SIZE, channels: 3 } })
    .png()
    .toFile(path);
}

export interface ShapesFiles {
  /** CSV with columns image, caption (paths relative to the CSV). */
  csv: string;
  /** `<folder>/<colour>/<image>.png` */
  folder: string;
  pairs: number;
}

/**
 * Draws `copies` passes over the 24 captions ("a small red circle", ...) into `<dir>/images/<name>-<i>.png`, lists
 * them in `<dir>/<name>.csv`, and links the same images as `<dir>/folders/<name>/<colour>/<i>.png`.
 */
export async function writeShapesSplit(
  dir: string,
  name: string,
  copies: number,
  seed: number,
): Promise<ShapesFiles> {
  const rand = seededRandom(seed);
  mkdirSync(join(dir, 'images'), { recursive: true });
  const lines = ['image,caption'];
  let i = 0;
  for (let k = 0; k < copies; k++) {
    for (const c of allCaptions()) {
      const file = `${name}-${String(i).padStart(4, '0')}.png`;
      const pixels = drawShape(c, rand);
      await writePng(join(dir, 'images', file), pixels);
      lines.push(`images/${file},a ${c.size} ${c.colour} ${c.shape}`);
      const classDir = join(dir, 'folders', name, c.colour);
      mkdirSync(classDir, { recursive: true });
      copyFileSync(join(dir, 'images', file), join(classDir, file));
      i++;
    }
  }
  const csv = join(dir, `${name}.csv`);
  writeFileSync(csv, lines.join('\n') + '\n');
  return { csv, folder: join(dir, 'folders', name), pairs: i };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const opt = (flag: string, def?: string) => {
    const i = args.indexOf(flag);
    return i >= 0 ? args[i + 1] : def;
  };
  const dir = args[0];
  if (!dir || dir.startsWith('--')) {
    console.error(
      'usage: node dist/examples/shapes_data.js <dir> [--copies 8] [--val-copies 2] [--seed 1] [--weights <hf folder>]',
    );
    process.exit(2);
  }
  await tf.setBackend('cpu');
  const seed = Number(opt('--seed', '1'));
  const train = await writeShapesSplit(dir, 'train', Number(opt('--copies', '8')), seed);
  const val = await writeShapesSplit(dir, 'val', Number(opt('--val-copies', '2')), seed + 1000);
  const weights = opt('--weights');
  if (weights && !existsSync(join(weights, 'model.safetensors'))) {
    throw new Error(`--weights ${weights}: no model.safetensors there`);
  }
  await writeShapesModel(join(dir, 'model'), weights);
  console.log(`${train.pairs} training pairs: ${train.csv} (or the class folder ${train.folder})`);
  console.log(`${val.pairs} validation pairs: ${val.csv} (or ${val.folder})`);
  console.log(`tiny model: ${join(dir, 'model')}`);
}

if (process.argv[1]?.endsWith('shapes_data.js')) {
  await main();
}
