import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { toleranceOf, readCases } from '../../src/check/fixture.js';
import { formatComparisons } from '../../src/check/compare.js';
import { loadSiglip } from '../../src/loader/index.js';
import '../../src/loader/node.js';
import { fixture } from '../helpers/fixtures.js';
import { REPO_ROOT } from '../helpers/fixtures.js';
import { compareWithFixture, tempDir } from './helpers.js';

const CLI = join(REPO_ROOT, 'dist/src/cli/main.js');

describe('siglip2 convert (CLI)', function () {
  let root: string;
  before(() => (root = tempDir('cli')));
  after(() => rmSync(root, { recursive: true, force: true }));

  it('--json converts, reports the towers, and the result loads', async function () {
    const out = join(root, 'out');
    const r = spawnSync(
      process.execPath,
      [CLI, 'convert', fixture('siglip_tiny'), out, '--towers', 'vision', '--json'],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout.slice(r.stdout.indexOf('{')));
    assert.deepEqual(Object.keys(report.manifest.towers), ['vision']);
    assert.equal(report.manifest.dtype, 'float32');
    const model = await loadSiglip(out);
    try {
      const rows = await compareWithFixture(
        model,
        toleranceOf(await readCases(fixture('siglip_tiny'))),
      );
      assert.ok(rows.length === 3 && rows.every((x) => x.ok), formatComparisons(rows));
    } finally {
      model.dispose();
    }
  });

  it('bad arguments exit with a message naming them', function () {
    const run = (...args: string[]) =>
      spawnSync(process.execPath, [CLI, 'convert', ...args], { encoding: 'utf8' });
    const r1 = run(fixture('siglip_tiny'), join(root, 'x'), '--dtype', 'int4');
    assert.equal(r1.status, 2);
    assert.match(r1.stderr, /--dtype int4: expected one of float32, float16, uint8/);
    const r2 = run('google/siglip2-so400m-patch16-256', join(root, 'y'));
    assert.equal(r2.status, 2);
    assert.match(
      r2.stderr,
      /google\/siglip2-so400m-patch16-256: downloading from the Hugging Face hub/,
    );
  });
});
