import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FinetuneSettings } from '../../src/finetune/run_config.js';
import { OUT, runFinetune } from '../../src/finetune/run.js';
import { useTestBackend } from '../helpers/backend.js';
import { REPO_ROOT } from '../helpers/fixtures.js';
import { readMetrics, shapesSetup, tinySettings, type ShapesSetup } from './helpers.js';

const CLI = join(REPO_ROOT, 'dist/src/cli/main.js');

function tmp(name: string): string {
  return join(mkdtempSync(join(tmpdir(), `siglip2-ft-${name}-`)), 'run');
}

/** The first `n` data lines of a CSV (with its header), written beside it. */
function headCsv(csv: string, n: number, name: string): string {
  const lines = readFileSync(csv, 'utf8').trim().split('\n');
  const path = join(csv, '..', name);
  writeFileSync(path, lines.slice(0, n + 1).join('\n') + '\n');
  return path;
}

function sameBytes(a: string, b: string, file: string): void {
  assert.ok(readFileSync(join(a, file)).equals(readFileSync(join(b, file))), `${file} differs`);
}

describe('siglip2 finetune: resuming gives the uninterrupted run exactly', function () {
  this.timeout(600_000);
  let s: ShapesSetup;
  before(async () => {
    s = await shapesSetup();
  });

  it('cpu: --epochs 1, then --resume --epochs 2 stopped mid-epoch, then --resume: same metrics, same bytes', async () => {
    await useTestBackend('cpu');
    // 8 training pairs in batches of 4: 2 steps per epoch.
    const settings: FinetuneSettings = tinySettings(s, {
      mode: 'full',
      train: headCsv(s.trainCsv, 8, 'train8.csv'),
      val: headCsv(s.valCsv, 8, 'val8.csv'),
      batchSize: 4,
      schedule: 'constant',
      warmup: 1,
      augment: { crop: true, flip: true },
    });
    const hooks = { exportTfjs: false, onInfo: () => undefined };
    const whole = tmp('whole');
    await runFinetune(whole, { settings }, { epochs: 2 }, hooks);

    const parts = tmp('parts');
    const first = await runFinetune(parts, { settings }, { epochs: 1 }, hooks);
    assert.equal(first.status, 'done');
    const ac = new AbortController();
    const second = await runFinetune(
      parts,
      { resume: true, given: {} },
      { epochs: 2 },
      {
        ...hooks,
        signal: ac.signal,
        onRecord: (r) => {
          if (r.type === 'step' && r.step === 3) ac.abort();
        },
      },
    );
    assert.equal(second.status, 'interrupted');
    assert.equal(second.step, 3);
    const third = await runFinetune(parts, { resume: true, given: {} }, { epochs: 2 }, hooks);
    assert.equal(third.status, 'done');
    assert.equal(third.step, 4);

    assert.deepEqual(readMetrics(parts), readMetrics(whole));
    sameBytes(parts, whole, join(OUT.hf, 'model.safetensors'));
    sameBytes(parts, whole, join(OUT.last, 'optimizer.safetensors'));
    sameBytes(parts, whole, join(OUT.last, 'vision', 'weights.bin'));
  });

  it('Ctrl-C (SIGINT) on the command line saves a checkpoint; --resume finishes as one run would (cosine, lora, wasm)', async () => {
    const args = (out: string) => [
      CLI,
      'finetune',
      '--model',
      s.model,
      '--train',
      s.trainCsv,
      '--val',
      s.valCsv,
      '--out',
      out,
      '--mode',
      'lora',
      '--epochs',
      '2',
      '--batch-size',
      '24',
      '--lr',
      '5e-3',
      '--warmup',
      '2',
      '--json',
      '--no-tfjs',
      '--backend',
      'wasm',
      '--threads',
      '1',
    ];
    const run = (argv: string[], interruptAfterStep?: number) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
        const child = spawn(process.execPath, argv);
        let stdout = '';
        let stderr = '';
        let sent = false;
        child.stdout.on('data', (d: Buffer) => {
          stdout += d.toString();
          if (
            interruptAfterStep !== undefined &&
            !sent &&
            stdout.includes(`"step":${interruptAfterStep},`)
          ) {
            sent = true;
            child.kill('SIGINT');
          }
        });
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        child.on('error', reject);
        child.on('close', (code) => resolve({ code, stdout, stderr }));
      });
    const whole = tmp('cli-whole');
    const a = await run(args(whole));
    assert.equal(a.code, 0, a.stderr);
    const parts = tmp('cli-parts');
    const b = await run(args(parts), 2);
    assert.equal(b.code, 130, b.stderr);
    assert.match(b.stderr, /checkpoint saved/);
    const c = await run([
      CLI,
      'finetune',
      '--resume',
      parts,
      '--epochs',
      '2',
      '--json',
      '--no-tfjs',
      '--backend',
      'wasm',
      '--threads',
      '1',
    ]);
    assert.equal(c.code, 0, c.stderr);
    assert.deepEqual(readMetrics(parts), readMetrics(whole));
    sameBytes(parts, whole, join(OUT.hf, 'model.safetensors'));
  });
});
