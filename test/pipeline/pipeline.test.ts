import { strict as assert } from 'node:assert';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { convertCheckpoint } from '../../converter/convert.js';
import { readCases, toleranceOf } from '../../src/check/fixture.js';
import { compareArrays, formatComparisons, type Tolerance } from '../../src/check/compare.js';
import { readSafetensors, type LoadedTensor } from '../../src/io/safetensors.js';
import { loadHfCheckpoint } from '../../src/model/load_hf.js';
import { disposeOutputs, type SiglipModel } from '../../src/model/siglip_model.js';
import { loadImages } from '../../src/processors/load.js';
import { SiglipImageProcessor } from '../../src/processors/image.js';
import { SiglipTokenizer } from '../../src/processors/tokenizer.js';
import {
  type LabelScore,
  SiglipPipeline,
  type TextTokenizer,
} from '../../src/pipeline/pipeline.js';
import { loadPipeline } from '../../src/pipeline/node.js';
import { useTestBackend } from '../helpers/backend.js';
import { fixture } from '../helpers/fixtures.js';
import { tempDir } from '../converter/helpers.js';
import { fixtureImages, TEST_WORDS, tinyCheckpointWithTokenizer } from './helpers.js';

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** A tokenizer that maps label texts to fixed rows of ids (the fixture's random input_ids have no text). */
class RowTokenizer implements TextTokenizer {
  calls: { texts: string[]; opts?: { lowercase?: boolean; maxLength?: number } }[] = [];
  constructor(
    private readonly rows: Map<string, Int32Array>,
    private readonly length: number,
  ) {}
  encode(texts: string[], opts?: { lowercase?: boolean; maxLength?: number }) {
    this.calls.push({ texts, opts });
    const inputIds = new Int32Array(texts.length * this.length);
    texts.forEach((t, i) => {
      const row = this.rows.get(t);
      if (!row) throw new Error(`RowTokenizer: no ids for ${JSON.stringify(t)}`);
      inputIds.set(row, i * this.length);
    });
    return {
      inputIds,
      shape: [texts.length, this.length] as [number, number],
      truncated: texts.map(() => false),
    };
  }
}

/** Ids the test tokenizer must give a text (lowercased words, `</s>`, padded with 0). */
function handIds(text: string, length: number): Int32Array {
  const words = text.toLowerCase().match(/\w+|[^\w\s]/g) ?? [];
  const ids = words.map((w) => (TEST_WORDS.includes(w) ? TEST_WORDS.indexOf(w) + 3 : 2));
  const out = new Int32Array(length);
  out.set([...ids, 1].slice(0, length));
  return out;
}

describe('SiglipPipeline (siglip_tiny fixture)', function () {
  this.timeout(60000);
  let model: SiglipModel;
  let inputs: Map<string, LoadedTensor>;
  let outputs: Map<string, LoadedTensor>;
  let tol: Tolerance;
  let ids: Int32Array[];
  const labels = ['first label', 'second label', 'third label'];
  let pipe: SiglipPipeline;
  let tok: RowTokenizer;
  let root: string;

  before(async () => {
    await useTestBackend('cpu');
    root = tempDir('pipeline');
    model = await loadHfCheckpoint(fixture('siglip_tiny'));
    inputs = await readSafetensors(fixture('siglip_tiny', 'inputs.safetensors'));
    outputs = await readSafetensors(fixture('siglip_tiny', 'outputs.safetensors'));
    tol = toleranceOf(await readCases(fixture('siglip_tiny')));
    const raw = inputs.get('input_ids')!;
    const L = raw.shape[1];
    ids = [0, 1, 2].map((i) => Int32Array.from(raw.data.subarray(i * L, (i + 1) * L)));
    tok = new RowTokenizer(new Map(labels.map((l, i) => [l, ids[i]])), L);
    const pre = JSON.parse(
      readFileSync(fixture('siglip_tiny', 'preprocessor_config.json'), 'utf8'),
    );
    pipe = new SiglipPipeline({
      model,
      imageProcessor: new SiglipImageProcessor(pre),
      tokenizer: tok,
    });
  });
  after(() => {
    model.dispose();
    rmSync(root, { recursive: true, force: true });
  });

  it("preprocesses the fixture's images into the fixture's pixel_values", async () => {
    const batch = (pipe.imageProcessor as SiglipImageProcessor).preprocess(
      await loadImages(fixtureImages()),
    );
    const golden = inputs.get('pixel_values')!;
    const c = compareArrays('pixel_values', batch.pixelValues, golden.data, golden.shape, {
      atol: 1.2e-7,
      rtol: 0,
    });
    assert.ok(c.ok, formatComparisons([c]));
  });

  it('classify: scores are sigmoid(fixture logits_per_image), labels sorted high to low', async () => {
    const logits = outputs.get('logits_per_image')!; // [2, 3]
    const result = await pipe.classify(fixtureImages(), labels, { template: '{}' });
    assert.equal(result.length, 2);
    // The text tower got the label texts, lowercasing on, padded to the tower's 16 positions.
    assert.deepEqual(tok.calls.at(-1), { texts: labels, opts: { lowercase: true, maxLength: 16 } });
    let maxErr = 0;
    result.forEach((row: LabelScore[], i) => {
      assert.deepEqual(
        [...row.map((r) => r.label)].sort(),
        [...labels].sort(),
        'every label once per image',
      );
      for (let k = 1; k < row.length; k++) assert.ok(row[k - 1].score >= row[k].score);
      for (const r of row) {
        const j = labels.indexOf(r.label);
        const expected = sigmoid(logits.data[i * 3 + j]);
        maxErr = Math.max(maxErr, Math.abs(r.score - expected));
        assert.ok(
          Math.abs(r.score - expected) <= tol.atol + tol.rtol * Math.abs(expected),
          `image ${i} ${r.label}: ${r.score} vs ${expected}`,
        );
      }
    });
    // The two images rank the labels differently in the fixture; the pipeline must keep that.
    const best = (i: number) =>
      [0, 1, 2].reduce((a, j) => (logits.data[i * 3 + j] > logits.data[i * 3 + a] ? j : a), 0);
    assert.equal(result[0][0].label, labels[best(0)]);
    assert.equal(result[1][0].label, labels[best(1)]);
    assert.ok(maxErr < 1e-5, `max score error ${maxErr}`);
  });

  it('a single image gives one list; topK keeps the best k', async () => {
    const one = await pipe.classify(fixtureImages()[1], labels, { template: '{}', topK: 2 });
    const all = await pipe.classify([fixtureImages()[1]], labels, { template: '{}' });
    assert.deepEqual(one, all[0].slice(0, 2));
  });

  it('embedImages / embedTexts / similarity / patchFeatures match the fixture, in any batch size', async () => {
    const rows = [];
    for (const batchSize of [1, 8]) {
      const ie = await pipe.embedImages(fixtureImages(), { batchSize });
      const te = await pipe.embedTexts(labels, { batchSize });
      assert.deepEqual(ie.dims, [2, 48]);
      assert.deepEqual(te.dims, [3, 48]);
      const sim = pipe.similarity(ie, te);
      const pf = await pipe.patchFeatures(fixtureImages(), { batchSize });
      assert.deepEqual(pf.dims, [2, 16, 48]);
      assert.deepEqual(pf.grids, [
        [4, 4],
        [4, 4],
      ]);
      const want = (n: string) => outputs.get(n)!;
      rows.push(
        compareArrays('image_embeds', ie.data, want('image_embeds').data, [2, 48], tol),
        compareArrays('text_embeds', te.data, want('text_embeds').data, [3, 48], tol),
        compareArrays('logits', sim.logits.flat(), want('logits_per_image').data, [2, 3], tol),
        compareArrays(
          'scores',
          sim.scores.flat(),
          Array.from(want('logits_per_image').data, sigmoid),
          [2, 3],
          tol,
        ),
        compareArrays('patches', pf.data, want('vision.last_hidden_state').data, [2, 16, 48], tol),
      );
      // Unit-length rows.
      for (let i = 0; i < 2; i++) {
        const n = Math.hypot(...ie.data.subarray(i * 48, (i + 1) * 48));
        assert.ok(Math.abs(n - 1) < 1e-5);
      }
    }
    assert.ok(
      rows.every((r) => r.ok),
      formatComparisons(rows),
    );
  });

  it('mixed image sizes: each image is resized on its own; a batch equals the images one by one', async () => {
    // chelsea.png 451x300, rocket.jpg 427x640, and a tiny 7x5 image in one call.
    const small = {
      data: new Uint8Array(7 * 5 * 3).map((_, i) => (i * 37) % 256),
      width: 7,
      height: 5,
    };
    const images = [...fixtureImages(), small];
    const together = await pipe.embedImages(images, { batchSize: 3 });
    for (let i = 0; i < images.length; i++) {
      const alone = await pipe.embedImages([images[i]]);
      const c = compareArrays(
        `image ${i}`,
        alone.data,
        together.data.subarray(i * 48, (i + 1) * 48),
        [48],
        {
          atol: 1e-5,
          rtol: 0,
        },
      );
      assert.ok(c.ok, formatComparisons([c]));
    }
  });

  it('bad input: unreadable, non-image and empty files, zero-size images, empty lists', async () => {
    const empty = join(root, 'empty.png');
    writeFileSync(empty, '');
    const missing = join(root, 'missing.jpg');
    const notImage = fixture('siglip_tiny', 'config.json');
    await assert.rejects(
      pipe.classify([missing], labels, { template: '{}' }),
      new RegExp(`${missing}: cannot read image file`),
    );
    await assert.rejects(pipe.classify([notImage], labels, { template: '{}' }), (e: Error) =>
      e.message.startsWith(notImage),
    );
    await assert.rejects(
      pipe.classify([empty], labels, { template: '{}' }),
      /empty\.png: file is empty \(0 bytes\), not an image/,
    );
    await assert.rejects(
      pipe.embedImages([fixtureImages()[0], { data: new Uint8Array(0), width: 0, height: 0 }]),
      /images\[1\]: image is 0x0/,
    );
    await assert.rejects(
      pipe.classify(fixtureImages(), []),
      /labels: the list of candidate labels is empty/,
    );
    await assert.rejects(pipe.classify(fixtureImages(), ['cat', ' ']), /labels\[1\] is empty/);
    await assert.rejects(pipe.embedImages([]), /images: expected a non-empty array/);
    await assert.rejects(pipe.embedTexts([]), /texts: expected a non-empty array/);
    await assert.rejects(
      pipe.classify(fixtureImages(), labels, { template: 'a photo' }),
      /has no \{\} where the label goes/,
    );
    await assert.rejects(
      pipe.embedImages(fixtureImages(), { batchSize: 0 }),
      /batchSize must be a positive integer/,
    );
    const ie = await pipe.embedImages([fixtureImages()[0]]);
    assert.throws(
      () => pipe.similarity(ie, { data: new Float32Array(10), dims: [1, 10] }),
      /image embeddings have 48 dimensions, text embeddings 10/,
    );
  });

  it('a processor or tokenizer that does not fit the model is refused', async () => {
    assert.throws(
      () =>
        new SiglipPipeline({
          model,
          imageProcessor: new SiglipImageProcessor({ size: { height: 224, width: 224 } }),
        }),
      /resizes to 224x224 but the vision tower takes 64x64/,
    );
    const noTok = new SiglipPipeline({
      model,
      tokenizerMissing: 'no tokenizer.json came with the model',
    });
    await assert.rejects(
      noTok.embedTexts(['a cat']),
      /this model has no tokenizer \(no tokenizer.json came with the model\)/,
    );
    // Gemma's 256000-piece tokenizer with the tiny model's 1000-entry vocabulary.
    const gemma = await SiglipTokenizer.fromFolder(fixture('tokenizer_gemma_siglip2'));
    const wrong = new SiglipPipeline({ model, tokenizer: gemma });
    await assert.rejects(
      wrong.classify(fixtureImages(), ['tabby cat', 'rocket']),
      /texts\[0\] "This is a photo of tabby cat\.": token id \d+ is outside the text model's vocabulary \(1000 entries\)/,
    );
  });
});

describe('SiglipPipeline with a tokenizer, end to end (HF folder and converted model)', function () {
  this.timeout(60000);
  let root: string;
  let dir: string;
  before(async () => {
    await useTestBackend('cpu');
    root = tempDir('pipeline-e2e');
    dir = tinyCheckpointWithTokenizer(join(root, 'hf'));
    await convertCheckpoint(dir, join(root, 'converted'));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  for (const kind of ['hf', 'converted'] as const) {
    it(`${kind}: tokenizes (lowercased, </s>, padded to 16), scores = sigmoid(model logits) on the fixture pixels`, async () => {
      const pipe = await loadPipeline(join(root, kind));
      try {
        const labels = ['Cat', 'rocket launch', 'zebra'];
        const texts = labels.map((l) => `This is a photo of ${l}.`);
        const ids = pipe.tokenize(texts);
        const want = new Int32Array(texts.flatMap((t) => [...handIds(t, 16)]));
        assert.deepEqual(ids, want);
        assert.deepEqual(
          pipe.tokenize(['A CAT'], { lowercase: false }).subarray(0, 3),
          Int32Array.from([2, 2, 1]),
          'lowercase off: upper-case words are unknown to the lowercase vocabulary',
        );
        // Reference: the model's own scoring head on the fixture's pixel_values and the hand-made ids.
        const inputs = await readSafetensors(fixture('siglip_tiny', 'inputs.safetensors'));
        const pv = inputs.get('pixel_values')!;
        const out = pipe.model.forward({
          pixelValues: tf.tensor4d(
            pv.data as Float32Array,
            pv.shape as [number, number, number, number],
          ),
          inputIds: tf.tensor2d(want, [3, 16], 'int32'),
        });
        const logits = out.logitsPerImage!.dataSync();
        disposeOutputs(out);
        const result = await pipe.classify(fixtureImages(), labels);
        let maxErr = 0;
        result.forEach((row, i) =>
          row.forEach((r) => {
            const e = sigmoid(logits[i * 3 + labels.indexOf(r.label)]);
            maxErr = Math.max(maxErr, Math.abs(r.score - e));
          }),
        );
        assert.ok(maxErr < 1e-5, `max score error ${maxErr}`);
      } finally {
        pipe.dispose();
      }
    });
  }

  it('a label longer than the text model (16 tokens here) is truncated with a warning', async () => {
    const warnings: string[] = [];
    const pipe = await loadPipeline(dir, { onWarning: (m) => warnings.push(m) });
    try {
      const long = Array(20).fill('cat').join(' ');
      const r = await pipe.classify(fixtureImages()[0], ['dog', long]);
      assert.equal(r.length, 2);
      assert.equal(warnings.length, 1);
      assert.match(
        warnings[0],
        /texts\[1\] "This is a photo of cat cat .*" is longer than the text model's 16 tokens; it was truncated/,
      );
      // Truncation keeps </s> last.
      const ids = pipe.tokenize([long]);
      assert.equal(ids[15], 1);
    } finally {
      pipe.dispose();
    }
  });
});
