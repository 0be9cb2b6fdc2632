import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
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

/**
 * A small `tokenizer.json` (WordPiece over whitespace/punctuation words, `</s>` appended, as SigLIP 2 appends
 * `<eos>`) whose ids fit the tiny fixture model's 1000-entry vocabulary. Unknown words map to `<unk>` = 2.
 */
export function testTokenizerJson(): Record<string, unknown> {
  const vocab: Record<string, number> = { '<pad>': 0, '</s>': 1, '<unk>': 2 };
  TEST_WORDS.forEach((w, i) => (vocab[w] = i + 3));
  const special = (content: string, id: number) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special('<pad>', 0), special('</s>', 1), special('<unk>', 2)],
    normalizer: null,
    pre_tokenizer: { type: 'Whitespace' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } }],
      pair: [
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '</s>', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 0 } },
        { SpecialToken: { id: '</s>', type_id: 0 } },
      ],
      special_tokens: { '</s>': { id: '</s>', ids: [1], tokens: ['</s>'] } },
    },
    decoder: null,
    model: {
      type: 'WordPiece',
      unk_token: '<unk>',
      continuing_subword_prefix: '##',
      max_input_chars_per_word: 100,
      vocab,
    },
  };
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
