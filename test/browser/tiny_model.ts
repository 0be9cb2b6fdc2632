/** The siglip_tiny fixture converted into a temporary folder, with a tiny WordLevel tokenizer.json beside it. */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { convertCheckpoint } from '../../converter/convert.js';
import { fixture } from '../helpers/fixtures.js';

/** 40 words plus <pad>=0, </s>=1, <unk>=2: ids stay far below the tiny model's 1000-token vocabulary. */
const WORDS = (
  'a an the of photo picture drawing diagram cat dog kitten rocket launch space coffee cup camera man ' +
  'person landscape grass tree sky blue red green black white small big orange striped animal machine ' +
  'mug tabby sitting flying old young in'
).split(' ');

export function tinyTokenizerJson(): unknown {
  const vocab: Record<string, number> = { '<pad>': 0, '</s>': 1, '<unk>': 2 };
  WORDS.forEach((w, i) => (vocab[w] = i + 3));
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [
      {
        id: 0,
        content: '<pad>',
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: true,
      },
      {
        id: 1,
        content: '</s>',
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: true,
      },
      {
        id: 2,
        content: '<unk>',
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: true,
      },
    ],
    normalizer: null,
    pre_tokenizer: { type: 'Whitespace' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } }],
      pair: [
        { Sequence: { id: 'A', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 0 } },
        { SpecialToken: { id: '</s>', type_id: 0 } },
      ],
      special_tokens: { '</s>': { id: '</s>', ids: [1], tokens: ['</s>'] } },
    },
    decoder: null,
    model: { type: 'WordLevel', vocab, unk_token: '<unk>' },
  };
}

export interface TinyModel {
  dir: string;
  cleanup(): void;
}

/**
 * Converts siglip_tiny (float32) with a tokenizer.json + tokenizer_config.json beside it (added to the checkpoint
 * folder first, so the converter copies them and records their digests).
 */
export async function convertTinyModel(): Promise<TinyModel> {
  const tmp = mkdtempSync(join(os.tmpdir(), 'siglip2-tiny-'));
  const hf = join(tmp, 'hf');
  mkdirSync(hf);
  for (const f of ['config.json', 'model.safetensors', 'preprocessor_config.json']) {
    copyFileSync(fixture('siglip_tiny', f), join(hf, f));
  }
  writeFileSync(join(hf, 'tokenizer.json'), JSON.stringify(tinyTokenizerJson()));
  writeFileSync(
    join(hf, 'tokenizer_config.json'),
    JSON.stringify({ pad_token: '<pad>', eos_token: '</s>', model_max_length: 16 }),
  );
  const dir = join(tmp, 'model');
  await convertCheckpoint(hf, dir, { dtype: 'float32' });
  return { dir, cleanup: () => rmSync(tmp, { recursive: true, force: true }) };
}
