import * as tf from '@tensorflow/tfjs';
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { augmentImage, randomResizedCropBox, sampleRandom } from '../../src/finetune/augment.js';
import { renderCurves } from '../../src/finetune/charts.js';
import {
  retrievalRecall,
  sameCaptionTargets,
  topKAccuracy,
} from '../../src/finetune/evaluation.js';
import type { MetricsRecord } from '../../src/finetune/metrics_log.js';
import { parseFreeze } from '../../src/finetune/modes.js';
import { learningRateSchedule } from '../../src/finetune/schedule.js';
import { parseAugment, numberOption } from '../../src/cli/commands/finetune.js';
import { useTestBackend } from '../helpers/backend.js';
import { REPO_ROOT } from '../helpers/fixtures.js';
import { shapesSetup } from './helpers.js';

describe('finetune parts', () => {
  before(async () => {
    await useTestBackend('cpu');
  });

  it('retrieval recall over distinct captions, both directions (hand-worked example)', () => {
    // 2 distinct captions, 3 images: images 0 and 1 have caption 0, image 2 has caption 1.
    // sim[caption][image]
    const sim = new Float32Array([
      0.9,
      0.1,
      0.5, // caption 0
      0.2,
      0.3,
      0.4, // caption 1
    ]);
    const r = retrievalRecall(sim, 2, [0, 0, 1], [1, 2]);
    // image->text: image 0: caption 0 (0.9) > 0.2, rank 0; image 1: 0.1 < 0.3, rank 1; image 2: 0.4 < 0.5, rank 1.
    assert.deepEqual(r.imageToText, [1 / 3, 1]);
    // text->image: caption 0: best own image 0.9, no other image above: rank 0; caption 1: own 0.4, images of
    // other captions above it: none (0.2, 0.3): rank 0.
    assert.deepEqual(r.textToImage, [1, 1]);
  });

  it('zero-shot top-k accuracy', () => {
    // 3 classes x 2 images: image 0 of class 2 ranks class 2 second; image 1 of class 0 ranks it first.
    const scores = new Float32Array([0.5, 0.9, 0.9, 0.1, 0.7, 0.2]);
    assert.deepEqual(topKAccuracy(scores, 3, [2, 0]), { top1: 0.5, top5: 1 });
  });

  it('same-caption targets: 1 where token ids are equal', () => {
    const ids = tf.tensor2d(
      [
        [5, 6, 1, 0],
        [5, 7, 1, 0],
        [5, 6, 1, 0],
      ],
      undefined,
      'int32',
    );
    const t = sameCaptionTargets(ids);
    assert.deepEqual(t.arraySync(), [
      [1, 0, 1],
      [0, 1, 0],
      [1, 0, 1],
    ]);
    tf.dispose([ids, t]);
  });

  it('--freeze specs', () => {
    assert.deepEqual(parseFreeze('vision,text:0-1,vision:3,text:embeddings'), {
      towers: ['vision'],
      layers: [
        { tower: 'text', from: 0, to: 2 },
        { tower: 'vision', from: 3, to: 4 },
      ],
      embeddings: ['text'],
    });
    assert.throws(() => parseFreeze('vison'), /cannot read "vison"/);
    assert.throws(() => parseFreeze('text:4-2'), /ends before it starts/);
  });

  it('learning-rate schedules: warm-up, then cosine / linear to 0 or constant', () => {
    const cos = learningRateSchedule('cosine', 1, 2, 10);
    assert.deepEqual([cos(0), cos(1), cos(2)], [0.5, 1, 1]);
    assert.ok(Math.abs(cos(6) - 0.5) < 1e-12);
    assert.equal(cos(10), 0);
    const lin = learningRateSchedule('linear', 1, 0.2, 10);
    assert.deepEqual([lin(0), lin(1), lin(2), lin(6), lin(10)], [0.5, 1, 1, 0.5, 0]);
    const c = learningRateSchedule('constant', 2, 0, 10);
    assert.equal(c(9), 2);
    assert.throws(() => learningRateSchedule('cosine', 1, 10, 10), /leave none of the 10 steps/);
  });

  it('augmentation: seeded, crops inside the image, flips mirror', () => {
    for (let i = 0; i < 200; i++) {
      const b = randomResizedCropBox(50, 30, sampleRandom(3, 1, i), [0.3, 1]);
      assert.ok(b.left >= 0 && b.top >= 0 && b.left + b.width <= 50 && b.top + b.height <= 30);
      const area = (b.width * b.height) / 1500;
      assert.ok(area > 0.25 && area <= 1.05, `area ${area}`);
    }
    const img = {
      data: new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]),
      width: 2,
      height: 2,
    };
    // Find a sample whose flip coin comes up heads, and check the mirror.
    const i = [...Array(20).keys()].find((k) => sampleRandom(0, 0, k)() < 0.5) as number;
    const f = augmentImage(img, { flip: true }, sampleRandom(0, 0, i));
    assert.deepEqual([...f.data], [4, 5, 6, 1, 2, 3, 10, 11, 12, 7, 8, 9]);
    const a = augmentImage(img, { crop: true, flip: true }, sampleRandom(7, 2, 5));
    const b = augmentImage(img, { crop: true, flip: true }, sampleRandom(7, 2, 5));
    assert.deepEqual(a, b);
    assert.deepEqual(parseAugment('crop,flip', 0.7), { crop: true, cropScale: 0.7, flip: true });
    assert.throws(() => parseAugment('rotate', 0.5), /unknown augmentation "rotate"/);
    assert.throws(() => numberOption('abc', '--lr'), /--lr abc: expected a number/);
  });

  it('curves: SVG with the series and a PNG', async () => {
    const records: MetricsRecord[] = [
      {
        type: 'eval',
        epoch: 0,
        step: 0,
        val_loss: 3,
        image_to_text_r1: 0.1,
        image_to_text_r5: 0.4,
        image_to_text_r10: 0.6,
        text_to_image_r1: 0.2,
        text_to_image_r5: 0.5,
        text_to_image_r10: 0.7,
        zeroshot_top1: 0.3,
        zeroshot_top5: 0.9,
        pairs: 10,
        seconds: 1,
      },
      {
        type: 'step',
        epoch: 1,
        step: 1,
        train_loss: 2.5,
        lr: 1e-3,
        grad_norm: 1,
        seconds: 1,
        images_per_s: 4,
      },
    ];
    const { svg, png } = await renderCurves(records, 'test run');
    for (const label of [
      'train loss',
      'validation loss',
      'image→text R@1',
      'zero-shot top-1',
      'test run',
    ]) {
      assert.ok(svg.includes(label), `${label} not in the SVG`);
    }
    assert.equal(png.subarray(1, 4).toString(), 'PNG');
  });

  it('siglip2 evaluate prints the evaluation of a model on a data set', async function () {
    this.timeout(120_000);
    const s = await shapesSetup();
    const out = await new Promise<{ code: number | null; stdout: string; stderr: string }>(
      (resolve, reject) => {
        const child = spawn(process.execPath, [
          join(REPO_ROOT, 'dist/src/cli/main.js'),
          'evaluate',
          '--model',
          s.model,
          '--data',
          s.valFolder,
          '--json',
          '--backend',
          'cpu',
        ]);
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        child.on('error', reject);
        child.on('close', (code) => resolve({ code, stdout, stderr }));
      },
    );
    assert.equal(out.code, 0, out.stderr);
    const r = JSON.parse(out.stdout) as Record<string, number>;
    assert.equal(r.pairs, 24);
    for (const k of [
      'val_loss',
      'image_to_text_r10',
      'text_to_image_r1',
      'zeroshot_top1',
      'zeroshot_top5',
    ]) {
      assert.equal(typeof r[k], 'number', k);
    }
    assert.equal(r.zeroshot_top5, 1);
  });
});
