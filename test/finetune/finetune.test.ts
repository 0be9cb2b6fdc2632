import * as tf from '@tensorflow/tfjs';
import { strict as assert } from 'node:assert';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readPairData } from '../../src/finetune/data_source.js';
import { evaluateData, type EvalMetrics } from '../../src/finetune/evaluation.js';
import type { EvalRecord } from '../../src/finetune/metrics_log.js';
import { MODES } from '../../src/finetune/modes.js';
import { OUT, runFinetune } from '../../src/finetune/run.js';
import { loadSiglip } from '../../src/loader/load.js';
import '../../src/loader/node.js';
import { loadPipeline } from '../../src/pipeline/node.js';
import { useTestBackend } from '../helpers/backend.js';
import {
  naflexShapesModel,
  readMetrics,
  shapesSetup,
  tinySettings,
  type ShapesSetup,
} from './helpers.js';

const recallSum = (m: EvalMetrics) =>
  m.image_to_text_r1 +
  m.image_to_text_r5 +
  m.image_to_text_r10 +
  m.text_to_image_r1 +
  m.text_to_image_r5 +
  m.text_to_image_r10;

describe('siglip2 finetune end to end (tiny model, generated shapes, wasm)', function () {
  this.timeout(300_000);
  let s: ShapesSetup;
  before(async () => {
    await useTestBackend('wasm');
    s = await shapesSetup();
  });

  for (const mode of MODES) {
    it(`--mode ${mode}: validation loss falls, recall rises, hf/ reloads with the same outputs, tfjs/ loads`, async () => {
      const out = join(mkdtempSync(join(tmpdir(), `siglip2-ft-${mode}-`)), 'run');
      const before = tf.memory().numTensors;
      const result = await runFinetune(
        out,
        { settings: tinySettings(s, { mode, lr: mode === 'full' ? 2e-3 : 5e-3 }) },
        { epochs: 1 },
        {
          onWarning: (m) => assert.fail(`unexpected warning: ${m}`),
          onInfo: (m) => process.env.FT_DEBUG && console.log(new Date().toISOString(), m),
          onRecord: (r) =>
            process.env.FT_DEBUG && console.log(new Date().toISOString(), r.type, r.step),
        },
      );
      assert.equal(result.status, 'done');
      assert.equal(tf.memory().numTensors, before, 'tensors left behind by the run');
      const evals = readMetrics(out).filter((r): r is EvalRecord => r.type === 'eval');
      assert.deepEqual(
        evals.map((e) => e.epoch),
        [0, 1],
      );
      const steps = readMetrics(out).filter((r) => r.type === 'step');
      assert.equal(steps.length, 4);
      const [first, last] = [evals[0], evals[evals.length - 1]];
      assert.ok(last.val_loss < first.val_loss, `val loss ${first.val_loss} -> ${last.val_loss}`);
      assert.ok(
        recallSum(last) > recallSum(first),
        `recall sum ${recallSum(first)} -> ${recallSum(last)}`,
      );
      for (const f of [
        OUT.svg,
        OUT.png,
        join(OUT.last, 'state.json'),
        join(OUT.best, 'state.json'),
      ]) {
        assert.ok(existsSync(join(out, f)), `${f} missing`);
      }
      assert.equal(readFileSync(join(out, OUT.png)).subarray(1, 4).toString(), 'PNG');
      for (const f of [
        'config.json',
        'model.safetensors',
        'tokenizer.json',
        'preprocessor_config.json',
      ]) {
        assert.ok(existsSync(join(out, OUT.hf, f)), `hf/${f} missing`);
      }

      // hf/ reproduces the run's last evaluation.
      const pipe = await loadPipeline(join(out, OUT.hf), {});
      const tfjs = await loadSiglip(join(out, OUT.tfjs));
      try {
        const val = await readPairData(s.valCsv);
        const prep = {
          imageProcessor: pipe.imageProcessor!,
          tokenizer: pipe.tokenizer!,
          textLength: pipe.textLength,
        };
        const again = await evaluateData(pipe.model, val, prep, { batchSize: 24 });
        assert.ok(
          Math.abs(again.val_loss - last.val_loss) < 1e-4 * Math.max(1, last.val_loss),
          `hf/ val loss ${again.val_loss}, run ${last.val_loss}`,
        );
        assert.ok(Math.abs(recallSum(again) - recallSum(last)) < 1e-9);
        // tfjs/ gives the outputs of hf/.
        const fromTfjs = await evaluateData(tfjs, val, prep, { batchSize: 24 });
        assert.ok(
          Math.abs(fromTfjs.val_loss - again.val_loss) < 1e-5 * Math.max(1, again.val_loss),
        );
        assert.equal(recallSum(fromTfjs), recallSum(again));
      } finally {
        pipe.dispose();
        tfjs.dispose();
      }
    });
  }

  it('class folders: captions from the template, zero-shot top-1 / top-5 each epoch', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'siglip2-ft-folders-')), 'run');
    const r = await runFinetune(
      out,
      {
        settings: tinySettings(s, {
          mode: 'full',
          train: s.trainFolder,
          val: s.valFolder,
          augment: { crop: true, cropScale: 0.8, flip: true },
        }),
      },
      { epochs: 1 },
      { exportTfjs: false },
    );
    assert.equal(r.status, 'done');
    const evals = readMetrics(out).filter((x): x is EvalRecord => x.type === 'eval');
    assert.equal(evals.length, 2);
    for (const e of evals) {
      assert.ok(e.zeroshot_top1 !== undefined && e.zeroshot_top5 !== undefined);
      // Three classes: every image has its class among the top 5.
      assert.equal(e.zeroshot_top5, 1);
    }
    assert.ok(
      (evals[1].zeroshot_top1 as number) > (evals[0].zeroshot_top1 as number),
      `zero-shot top-1 ${evals[0].zeroshot_top1} -> ${evals[1].zeroshot_top1}`,
    );
    assert.ok(evals[1].val_loss < evals[0].val_loss);
    assert.ok(!existsSync(join(out, OUT.tfjs)));
  });

  it('NaFlex (siglip2_naflex_tiny, --max-num-patches 12): the loss falls and hf/ reproduces the last evaluation', async () => {
    const model = await naflexShapesModel(s);
    const out = join(mkdtempSync(join(tmpdir(), 'siglip2-ft-naflex-')), 'run');
    const settings = tinySettings(s, { model, mode: 'lora', maxNumPatches: 12 });
    await runFinetune(
      out,
      { settings },
      { epochs: 1 },
      { exportTfjs: false, onInfo: () => undefined },
    );
    const evals = readMetrics(out).filter((r): r is EvalRecord => r.type === 'eval');
    assert.ok(
      evals[1].val_loss < evals[0].val_loss,
      `${evals[0].val_loss} -> ${evals[1].val_loss}`,
    );
    const pipe = await loadPipeline(join(out, OUT.hf), { maxNumPatches: 12 });
    try {
      const again = await evaluateData(
        pipe.model,
        await readPairData(s.valCsv),
        {
          imageProcessor: pipe.imageProcessor!,
          tokenizer: pipe.tokenizer!,
          textLength: pipe.textLength,
        },
        { batchSize: 24 },
      );
      assert.ok(
        Math.abs(again.val_loss - evals[1].val_loss) < 1e-4 * Math.max(1, evals[1].val_loss),
      );
    } finally {
      pipe.dispose();
    }
  });
});
