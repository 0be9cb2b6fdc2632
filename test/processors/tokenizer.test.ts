import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkTokenizerFixture } from '../../src/check/tokenizer_fixture.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { SiglipTokenizer, canonicalizeText } from '../../src/processors/tokenizer.js';
import { fixture } from '../helpers/fixtures.js';

describe('SiglipTokenizer (Gemma, SigLIP 2)', function () {
  this.timeout(60000);
  let tok: SiglipTokenizer;
  let strings: string[];
  let expected: Int32Array;
  const dir = () => fixture('tokenizer_gemma_siglip2');

  before(async () => {
    tok = await SiglipTokenizer.fromFolder(dir(), { lowercase: false });
    strings = (
      JSON.parse(readFileSync(join(dir(), 'inputs.json'), 'utf8')) as { strings: string[] }
    ).strings;
    expected = (await readSafetensors(join(dir(), 'outputs.safetensors'))).get('input_ids')!
      .data as Int32Array;
  });

  it('reproduces every fixture row exactly without lowercasing', () => {
    assert.equal(tok.maxLength, 64);
    assert.equal(tok.padId, 0);
    assert.equal(tok.eosId, 1);
    const got = tok.encode(strings);
    assert.deepEqual(got.shape, [44, 64]);
    for (let i = 0; i < strings.length; i++) {
      assert.deepEqual(
        [...got.inputIds.subarray(i * 64, i * 64 + 64)],
        [...expected.subarray(i * 64, i * 64 + 64)],
        `string ${i} ${JSON.stringify(strings[i])}`,
      );
    }
    assert.ok(got.truncated.every((t) => !t));
  });

  it('lowercases when asked (default), matching the ids of the lowercased text', () => {
    const lower = tok.encode(['A photo of a cat.'], { lowercase: true });
    const plain = tok.encode(['a photo of a cat.']);
    assert.deepEqual([...lower.inputIds], [...plain.inputIds]);
    // fixture row 1 is the uncased "A photo of a cat." and starts with the id of "A"
    assert.notEqual(lower.inputIds[0], expected[64]);
    assert.equal(lower.inputIds[1], expected[65]);
  });

  it('truncates long texts to maxLength keeping EOS last and reports them', () => {
    const calls: number[] = [];
    const long = Array.from({ length: 100 }, () => 'a').join(' ');
    const got = tok.encode(['a photo', long]);
    assert.deepEqual(got.truncated, [false, true]);
    const row = got.inputIds.subarray(64, 128);
    assert.equal(row[63], 1);
    // the first 63 ids are the first 63 of the untruncated text: "a" then 62 x "▁a" (fixture row 40)
    assert.deepEqual([...row.subarray(0, 40)], [...expected.subarray(40 * 64, 40 * 64 + 40)]);
    assert.ok(row.subarray(1, 63).every((id) => id === 476));
    assert.deepEqual(got.lengths, [3, 64]);
    const warned = tok.withOptions({ onTruncate: (i) => calls.push(i) });
    warned.encode(['short', long, long]);
    assert.equal(warned.lowercase, false);
    assert.deepEqual(calls, [1, 2]);
  });

  it('honours a per-call maxLength', () => {
    const got = tok.encode(['a photo of a cat'], { maxLength: 4 });
    assert.deepEqual([...got.inputIds], [235250, 2686, 576, 1]);
    assert.deepEqual(got.truncated, [true]);
    assert.throws(
      () => tok.encode(['x'], { maxLength: 0 }),
      /maxLength must be a positive integer/,
    );
  });

  it('rejects non-string texts naming the index', () => {
    assert.throws(
      () => tok.encode(['ok', 3 as unknown as string]),
      /texts\[1\] is number, not a string/,
    );
  });

  it('checkTokenizerFixture reports one ok comparison per string', async () => {
    const rows = await checkTokenizerFixture(dir());
    assert.equal(rows.length, 44);
    assert.ok(rows.every((r) => r.ok && r.maxAbs === 0));
  });
});

describe('SiglipTokenizer (T5-style SigLIP 1 tokenizer.json)', () => {
  // A miniature SentencePiece Unigram tokenizer laid out like a SigLIP 1 checkpoint's converted tokenizer.json.
  const vocab: [string, number][] = [
    ['<pad>', 0],
    ['</s>', 0],
    ['<unk>', 0],
    ['▁a', -1],
    ['▁photo', -1],
    ['▁of', -1],
    ['▁cat', -1],
    ['▁', -2],
    ['a', -3],
    ['c', -3],
    ['t', -3],
  ];
  const tokenizerJson = {
    version: '1.0',
    added_tokens: [
      {
        id: 0,
        content: '<pad>',
        special: true,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
      },
      {
        id: 1,
        content: '</s>',
        special: true,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
      },
      {
        id: 2,
        content: '<unk>',
        special: true,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
      },
    ],
    normalizer: null,
    pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } }],
      pair: [],
      special_tokens: { '</s>': { id: '</s>', ids: [1], tokens: ['</s>'] } },
    },
    decoder: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true },
    model: { type: 'Unigram', unk_id: 2, vocab, byte_fallback: false },
  };
  const config = {
    tokenizer_class: 'SiglipTokenizer',
    pad_token: '</s>',
    eos_token: '</s>',
    unk_token: '<unk>',
    model_max_length: 8,
  };

  it('pads with the pad token of tokenizer_config (</s> = 1), canonicalises and lowercases', () => {
    const tok = SiglipTokenizer.fromJSON(tokenizerJson, config);
    assert.equal(tok.padId, 1);
    assert.equal(tok.maxLength, 8);
    assert.equal(tok.canonicalize, true);
    const got = tok.encode(['A photo,   of a CAT!']);
    assert.deepEqual([...got.inputIds], [3, 4, 5, 3, 6, 1, 1, 1]);
  });

  it('reads the files from a folder and explains a SentencePiece-only folder', async () => {
    const d = mkdtempSync(join(tmpdir(), 'siglip1-tok-'));
    writeFileSync(join(d, 'tokenizer.json'), JSON.stringify(tokenizerJson));
    writeFileSync(join(d, 'tokenizer_config.json'), JSON.stringify(config));
    const tok = await SiglipTokenizer.fromFolder(d, { maxLength: 3 });
    assert.deepEqual([...tok.encode(['a cat']).inputIds], [3, 6, 1]);
    const only = mkdtempSync(join(tmpdir(), 'siglip1-spm-'));
    writeFileSync(join(only, 'spiece.model'), 'x');
    await assert.rejects(SiglipTokenizer.fromFolder(only), /no tokenizer\.json in .*SentencePiece/);
    const bad = mkdtempSync(join(tmpdir(), 'siglip1-bad-'));
    writeFileSync(join(bad, 'tokenizer.json'), '{not json');
    await assert.rejects(SiglipTokenizer.fromFolder(bad), /tokenizer\.json as JSON/);
    assert.throws(() => SiglipTokenizer.fromJSON({ foo: 1 }), /no "model" object/);
  });

  it('canonicalizeText removes ASCII punctuation and collapses whitespace like HF SiglipTokenizer', () => {
    assert.equal(canonicalizeText('  Hello,\tworld!!  (C++) é. '), 'Hello world C é');
  });
});
