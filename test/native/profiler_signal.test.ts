import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers/fixtures.js';
import { requireNative } from './helpers.js';

// oneDNN's AVX2 sgemm corrupted the heap when V8's sampling profiler signalled the main thread in the middle of it
// (`node --cpu-prof` on the shapes demo aborted: "corrupted size vs. prev_size while consolidating"); the addon
// now runs its oneDNN kernels with asynchronous signals blocked (native/src/addon.cc, signal_safe).
describe('native backend: training under the V8 sampling profiler (SIGPROF)', function () {
  before(function () {
    requireNative(this);
  });

  it('node --cpu-prof runs the shapes demo on native to the end and writes its profile', function () {
    this.timeout(300_000);
    const dir = mkdtempSync(join(tmpdir(), 'siglip2-cpuprof-'));
    try {
      const r = spawnSync(
        process.execPath,
        [
          '--cpu-prof',
          '--cpu-prof-dir',
          dir,
          // 1 ms samples: many signals land inside the kernels
          '--cpu-prof-interval',
          '1000',
          join(REPO_ROOT, 'dist/examples/finetune_shapes.js'),
          '--backend',
          'native',
          '--epochs',
          '1',
        ],
        { encoding: 'utf8', timeout: 240_000 },
      );
      assert.equal(r.signal, null, `killed by ${r.signal}: ${r.stderr.slice(-500)}`);
      assert.doesNotMatch(r.stderr, /corrupted|double free|malloc/);
      assert.match(r.stdout, /8 steps in [\d.]+ s/);
      assert.equal(readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).length, 1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
