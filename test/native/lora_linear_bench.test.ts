import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers/fixtures.js';
import { requireNative } from './helpers.js';

const BENCH = join(REPO_ROOT, 'dist/bench/lora_linear.js');

const run = (...args: string[]) =>
  spawnSync(process.execPath, [BENCH, ...args], { encoding: 'utf8', timeout: 120_000 });

describe('bench:lora-linear (the LoRA op with and without in-place accumulation)', function () {
  before(function () {
    requireNative(this);
  });

  it('times both variants on the three shapes and checks that their gradients agree', () => {
    const r = run(
      '--model',
      'base',
      '--rows',
      '37',
      '--rank',
      '3',
      '--rounds',
      '2',
      '--threads',
      '2',
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^native: oneDNN /m);
    assert.match(r.stdout, /base: 37 rows, rank 3, forward \+ gradients of x, A and B, 2 rounds/);
    for (const shape of [
      'q/k/v/out_proj \\[768,768\\]',
      'fc1 \\[768,3072\\]',
      'fc2 \\[3072,768\\]',
    ]) {
      assert.match(
        r.stdout,
        new RegExp(
          `${shape}: accumulated in place [\\d.]+ \\(fastest [\\d.]+\\), matMul \\+ add [\\d.]+ .*gradients agree to`,
        ),
      );
    }
  });

  it('names a bad argument', () => {
    const bad = run('--model', 'huge');
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /--model must be so400m or base, got huge/);
    const rows = run('--rows', '0');
    assert.equal(rows.status, 1);
    assert.match(rows.stderr, /--rows must be a positive integer, got 0/);
  });
});
