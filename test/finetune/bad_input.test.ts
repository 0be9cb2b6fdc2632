import { strict as assert } from 'node:assert';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FinetuneSettings } from '../../src/finetune/run_config.js';
import { runFinetune } from '../../src/finetune/run.js';
import { useTestBackend } from '../helpers/backend.js';
import { shapesSetup, tinySettings, type ShapesSetup } from './helpers.js';

/** A fresh folder for data files and the (not yet existing) output folder beside it. */
function workDir(): { dir: string; out: string } {
  const dir = mkdtempSync(join(tmpdir(), 'siglip2-ft-bad-'));
  return { dir, out: join(dir, 'out') };
}

/** Runs and expects an error matching `pattern`, with nothing written to `out`. */
async function rejects(
  out: string,
  settings: FinetuneSettings,
  pattern: RegExp,
  epochs = 1,
): Promise<void> {
  await assert.rejects(
    runFinetune(out, { settings }, { epochs }, { onInfo: () => undefined }),
    (e: Error) => {
      assert.match(e.message, pattern);
      return true;
    },
  );
  assert.ok(!existsSync(out), `${out} was created`);
}

describe('siglip2 finetune: bad input', function () {
  this.timeout(300_000);
  let s: ShapesSetup;
  let firstImage: string;
  before(async () => {
    await useTestBackend('wasm');
    s = await shapesSetup();
    firstImage = join(s.dir, 'images', 'train-0000.png');
  });

  it('a missing image names the data file and line', async () => {
    const { dir, out } = workDir();
    const csv = join(dir, 'data.csv');
    writeFileSync(
      csv,
      `image,caption\n${firstImage},a small red circle\nnope/missing.png,a large red circle\n`,
    );
    await rejects(
      out,
      tinySettings(s, { train: csv }),
      new RegExp(`data\\.csv:3: image .*missing\\.png is missing`),
    );
  });

  it('an unreadable image names the data file and line', async () => {
    const { dir, out } = workDir();
    writeFileSync(join(dir, 'broken.png'), 'not a png at all');
    const jsonl = join(dir, 'data.jsonl');
    writeFileSync(
      jsonl,
      [
        JSON.stringify({ image: firstImage, caption: 'a' }),
        '',
        JSON.stringify({ image: 'broken.png', caption: 'b' }),
      ].join('\n'),
    );
    await rejects(
      out,
      tinySettings(s, { train: jsonl }),
      /data\.jsonl:3: .*broken\.png is not a readable image/,
    );
  });

  it('an empty data set', async () => {
    const { dir, out } = workDir();
    const csv = join(dir, 'empty.csv');
    writeFileSync(csv, 'image,caption\n');
    await rejects(out, tinySettings(s, { train: csv }), /empty\.csv: the data set is empty/);
    const folder = join(dir, 'classes');
    mkdirSync(join(folder, 'a'), { recursive: true });
    await rejects(
      out,
      tinySettings(s, { train: folder, val: undefined }),
      /classes: the data set is empty/,
    );
  });

  it('a caption column that does not exist', async () => {
    const { out } = workDir();
    await rejects(
      out,
      tinySettings(s, { captionColumn: 'text' }),
      /train\.csv: no caption column "text" in the header \(image,caption\); name it with --caption-column/,
    );
  });

  it('a class folder with one class', async () => {
    const { dir, out } = workDir();
    mkdirSync(join(dir, 'only', 'cats'), { recursive: true });
    writeFileSync(join(dir, 'only', 'cats', 'a.png'), readFileSync(firstImage));
    await rejects(
      out,
      tinySettings(s, { train: join(dir, 'only'), val: undefined }),
      /only one class folder with images \(cats\)/,
    );
  });

  it('a batch size larger than the data', async () => {
    const { out } = workDir();
    await rejects(
      out,
      tinySettings(s, { batchSize: 97 }),
      /--batch-size 97: larger than the 96 training pairs/,
    );
  });

  it('a validation set that overlaps the training set: a warning naming both', async () => {
    const { dir, out } = workDir();
    const val = join(dir, 'val.csv');
    // The same file under its path, and the same bytes under another name.
    writeFileSync(join(dir, 'copy.png'), readFileSync(firstImage));
    writeFileSync(
      val,
      `image,caption\n${firstImage},a small red circle\ncopy.png,a small red circle\n`,
    );
    const warnings: string[] = [];
    const ac = new AbortController();
    ac.abort();
    const r = await runFinetune(
      out,
      { settings: tinySettings(s, { val }) },
      { epochs: 1 },
      { signal: ac.signal, onWarning: (m) => warnings.push(m), onInfo: () => undefined },
    );
    assert.equal(r.status, 'interrupted');
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /2 of the 2 validation images are also in the training data/);
    assert.match(warnings[0], /val\.csv:2 .* = .*train\.csv:2/);
    assert.match(warnings[0], /val\.csv:3 \(.*copy\.png\)/);
  });

  it('--resume of a run from another model or mode, or of a folder that is no run: an error, nothing changed', async () => {
    const { dir, out } = workDir();
    const ac = new AbortController();
    ac.abort();
    await runFinetune(
      out,
      { settings: tinySettings(s, { mode: 'lora' }) },
      { epochs: 1 },
      {
        signal: ac.signal,
        onInfo: () => undefined,
      },
    );
    const snapshot = () =>
      readdirSync(out, { recursive: true })
        .map(String)
        .sort()
        .map((f) => `${f}:${statSync(join(out, f)).mtimeMs}`);
    const before = snapshot();
    const resume = (given: Partial<FinetuneSettings>) =>
      runFinetune(out, { resume: true, given }, { epochs: 1 }, { onInfo: () => undefined });
    await assert.rejects(resume({ mode: 'full' }), /--mode "full" \(the run has "lora"\)/);
    await assert.rejects(
      resume({ model: join(dir, 'other-model') }),
      /--model .*other-model.* \(the run has /,
    );
    await assert.rejects(
      runFinetune(dir, { resume: true, given: {} }, { epochs: 1 }),
      /no run\.json there; not the output folder of a siglip2 finetune run/,
    );
    assert.deepEqual(snapshot(), before);
    // A new run into the folder of an old one is refused too.
    await assert.rejects(
      runFinetune(out, { settings: tinySettings(s) }, { epochs: 1 }),
      /the folder exists and is not empty; continue that run with --resume/,
    );
    assert.deepEqual(snapshot(), before);
  });

  it('bad numbers name their flag', async () => {
    const { out } = workDir();
    await rejects(out, tinySettings(s, { lr: -1 }), /--lr -1: expected a positive number/);
    await rejects(
      out,
      tinySettings(s, { schedule: 'step' as 'cosine' }),
      /--schedule step: expected one of cosine, linear, constant/,
    );
    await rejects(
      out,
      tinySettings(s, { freeze: 'vision:9-12' }),
      /vision layers \[9, 13\) are not a range within the 2 layers/,
    );
  });
});
