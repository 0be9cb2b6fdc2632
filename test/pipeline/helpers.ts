import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { wordTokenizerJson } from '../../examples/word_tokenizer.js';
import { fixture } from '../helpers/fixtures.js';

/** Words of the test tokenizer after <pad>=0, </s>=1, <unk>=2 (ids 3, 4, ...); all well under the tiny vocab 1000. */
export const TEST_WORDS = [
  'this',
  'is',
  'a',
  'photo',
  'of',
  '.',
  'cat',
  'dog',
  'rocket',
  'launch',
  'car',
  'tabby',
];

/** The test `tokenizer.json`: ids fit the tiny fixture model's 1000-entry vocabulary. */
export function testTokenizerJson(): Record<string, unknown> {
  return wordTokenizerJson(TEST_WORDS);
}

export const TEST_TOKENIZER_CONFIG = {
  tokenizer_class: 'PreTrainedTokenizerFast',
  pad_token: '<pad>',
  eos_token: '</s>',
  unk_token: '<unk>',
  model_max_length: 64,
};

/** A copy of the siglip_tiny checkpoint folder with the test tokenizer beside it. */
export function tinyCheckpointWithTokenizer(dir: string): string {
  mkdirSync(dir, { recursive: true });
  for (const f of ['config.json', 'model.safetensors', 'preprocessor_config.json']) {
    copyFileSync(fixture('siglip_tiny', f), join(dir, f));
  }
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(testTokenizerJson()));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(TEST_TOKENIZER_CONFIG));
  return dir;
}

/** The fixture images the siglip_tiny pixel_values were made from, in order. */
export function fixtureImages(): string[] {
  return [
    fixture('image_preprocessing', 'images', 'chelsea.png'),
    fixture('image_preprocessing', 'images', 'rocket.jpg'),
  ];
}
