import { strict as assert } from 'node:assert';
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import '../../src/model/naflex_vision_model.js';
import type { SiglipPipeline } from '../../src/pipeline/pipeline.js';
import { loadPipeline } from '../../src/pipeline/node.js';
import { useTestBackend } from '../helpers/backend.js';
import { fixture } from '../helpers/fixtures.js';
import { tempDir } from '../converter/helpers.js';
import {
  TEST_TOKENIZER_CONFIG,
  fixtureImages,
  testTokenizerJson,
  tinyCheckpointWithTokenizer,
} from './helpers.js';
import { gc } from '../helpers/gc.js';

/** The NaFlex tiny checkpoint (4x4 position grid) with the test tokenizer and a 24-patch NaFlex processor. */
function naflexCheckpointWithTokenizer(dir: string): string {
  mkdirSync(dir, { recursive: true });
  for (const f of ['config.json', 'model.safetensors']) {
    copyFileSync(fixture('siglip2_naflex_tiny', f), join(dir, f));
  }
  copyFileSync(
    fixture('image_preprocessing', 'siglip2_naflex_256', 'preprocessor_config.json'),
    join(dir, 'preprocessor_config.json'),
  );
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(testTokenizerJson()));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(TEST_TOKENIZER_CONFIG));
  return dir;
}

const LABELS = ['cat', 'dog', 'rocket launch', 'car', 'tabby cat'];
const IMAGES = () => [
  ...fixtureImages(),
  fixture('image_preprocessing', 'images', 'coffee_portrait.png'),
  fixture('image_preprocessing', 'images', 'camera.png'),
];

const MiB = 2 ** 20;

describe('SiglipPipeline under load: no leaks, no races (tiny models)', function () {
  this.timeout(600000);
  let root: string;
  let fixed: SiglipPipeline;
  let naflex: SiglipPipeline;

  before(async () => {
    await useTestBackend('cpu');
    root = tempDir('pipeline-load');
    // loaded concurrently: checked against a pipeline loaded alone below
    [fixed, naflex] = await Promise.all([
      loadPipeline(tinyCheckpointWithTokenizer(join(root, 'fixed'))),
      loadPipeline(naflexCheckpointWithTokenizer(join(root, 'naflex')), { maxNumPatches: 24 }),
    ]);
  });

  it('two pipelines loaded at once classify exactly as one loaded alone', async () => {
    await useTestBackend('cpu');
    const alone = await loadPipeline(join(root, 'fixed'));
    try {
      const images = IMAGES();
      assert.deepEqual(await fixed.classify(images, LABELS), await alone.classify(images, LABELS));
    } finally {
      alone.dispose();
    }
  });

  after(() => {
    fixed?.dispose();
    naflex?.dispose();
    rmSync(root, { recursive: true, force: true });
  });

  // 1,000 calls on wasm; the cpu backend is 2-4x slower per call, so it runs 200 (SIGLIP2_LOAD_CALLS overrides both).
  const CALLS = { wasm: 1000, cpu: 200 };
  for (const backend of ['cpu', 'wasm'] as const) {
    const n = Number(process.env.SIGLIP2_LOAD_CALLS ?? CALLS[backend]);
    it(`${n} classify calls keep the tensor count constant and RSS growth under 64 MiB (${backend})`, async () => {
      await useTestBackend(backend);
      // A small PNG file: every call still decodes, resizes and tokenizes, without a large photo's resize
      // dominating the time of 1,000 calls.
      const image = join(root, 'small.png');
      await sharp(IMAGES()[0]).resize(72, 48).png().toFile(image);
      const labels = LABELS.slice(0, 3);
      const first = await fixed.classify(image, labels);
      // warm-up: kernels, pooled buffers, the wasm heap's high-water mark, sharp's caches
      for (let i = 0; i < 50; i++) await fixed.classify(image, labels);
      gc();
      const tensors = tf.memory().numTensors;
      const rss = process.memoryUsage().rss;
      let last = first;
      const t0 = Date.now();
      for (let i = 1; i <= n; i++) {
        last = await fixed.classify(image, labels);
        if (i % 50 === 0) {
          assert.equal(tf.memory().numTensors, tensors, `${backend}: tensors after ${i} calls`);
        }
      }
      const seconds = (Date.now() - t0) / 1000;
      gc();
      const growth = process.memoryUsage().rss - rss;
      console.log(
        `      ${backend}: ${n} classify calls in ${seconds.toFixed(1)} s, ${tensors} tensors throughout, ` +
          `RSS ${(rss / MiB).toFixed(0)} MiB -> growth ${(growth / MiB).toFixed(1)} MiB`,
      );
      assert.ok(growth < 64 * MiB, `${backend}: RSS grew ${(growth / MiB).toFixed(1)} MiB`);
      assert.deepEqual(last, first, `${backend}: the last result differs from the first`);
    });

    it(`concurrent classify / embedImages on one pipeline and on two models equal the sequential results (${backend})`, async () => {
      await useTestBackend(backend);
      const images = IMAGES();
      const calls: (() => Promise<unknown>)[] = [
        () => fixed.classify(images, LABELS),
        () => fixed.embedImages(images, { batchSize: 3 }),
        () => fixed.classify(images[1], LABELS.slice(0, 2)),
        () => naflex.classify(images, LABELS),
        () => naflex.embedImages(images, { batchSize: 1 }),
        () => fixed.embedTexts(LABELS),
        () => naflex.patchFeatures(images.slice(1), { batchSize: 2 }),
        () => fixed.classify(images.slice(2), LABELS, { topK: 2 }),
      ];
      const tensors = tf.memory().numTensors;
      const sequential: unknown[] = [];
      for (const c of calls) sequential.push(await c());
      assert.equal(tf.memory().numTensors, tensors, `${backend}: tensors leaked (sequential)`);
      // the same calls all at once, twice, and interleaved in reverse order
      const concurrent = await Promise.all(calls.map((c) => c()));
      const reversed = (await Promise.all([...calls].reverse().map((c) => c()))).reverse();
      assert.equal(tf.memory().numTensors, tensors, `${backend}: tensors leaked (concurrent)`);
      for (let i = 0; i < calls.length; i++) {
        assert.deepEqual(concurrent[i], sequential[i], `${backend}: call ${i} (concurrent)`);
        assert.deepEqual(reversed[i], sequential[i], `${backend}: call ${i} (reversed)`);
      }
    });
  }
});
