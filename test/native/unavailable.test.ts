import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { useBackend } from '../../src/backends/index.js';
import { REPO_ROOT, fixture } from '../helpers/fixtures.js';
import { requireNative } from './helpers.js';

const HINT = /apt-get install g\+\+ make libdnnl-dev.*npm run build:native/;

describe('native backend: selection, and what happens when it is not built', () => {
  it('--backend native without the addon says what to install, in one line', () => {
    const r = spawnSync(
      process.execPath,
      [
        join(REPO_ROOT, 'dist/src/cli/main.js'),
        'check',
        fixture('siglip_tiny'),
        '--backend',
        'native',
      ],
      {
        encoding: 'utf8',
        env: { ...process.env, SIGLIP2_NATIVE_ADDON: '/nonexistent/siglip2_native.node' },
      },
    );
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /useBackend\('native'\): the native addon is not built/);
    assert.match(r.stderr, HINT);
  });

  it('the install script succeeds without a compiler and prints one line; build:native fails', () => {
    const script = join(REPO_ROOT, 'scripts/build-native.mjs');
    const env = { ...process.env, CXX: '/nonexistent/g++' };
    const optional = spawnSync(process.execPath, [script, '--optional'], { encoding: 'utf8', env });
    assert.equal(optional.status, 0);
    assert.equal(optional.stderr.trim().split('\n').length, 1);
    assert.match(optional.stderr, HINT);
    const strict = spawnSync(process.execPath, [script], { encoding: 'utf8', env });
    assert.equal(strict.status, 1);
    assert.match(strict.stderr, HINT);
  });

  it('a SIGLIP2_ONEDNN_PREFIX without lib/libdnnl.a is named in one line; build:native fails on it', () => {
    const script = join(REPO_ROOT, 'scripts/build-native.mjs');
    const prefix = join(REPO_ROOT, 'native', 'no-such-onednn');
    const env = { ...process.env, SIGLIP2_ONEDNN_PREFIX: prefix };
    const optional = spawnSync(process.execPath, [script, '--optional'], { encoding: 'utf8', env });
    assert.equal(optional.status, 0);
    assert.equal(optional.stderr.trim().split('\n').length, 1);
    assert.ok(
      optional.stderr.includes(`SIGLIP2_ONEDNN_PREFIX=${prefix} has no lib/libdnnl.a`),
      optional.stderr,
    );
    const strict = spawnSync(process.execPath, [script], { encoding: 'utf8', env });
    assert.equal(strict.status, 1);
    assert.ok(strict.stderr.includes('SIGLIP2_ONEDNN_PREFIX'), strict.stderr);
  });

  it('auto picks native when it is built, and the reason names library, version, ISA and threads', async function () {
    requireNative(this);
    const report = await useBackend('auto', { threads: 1 });
    if (report.name === 'tensorflow') this.skip();
    assert.equal(report.name, 'native');
    assert.match(
      report.reason,
      /^auto: native: oneDNN \d+\.\d+\.\d+ dispatching \S+.*, 1 thread \(OpenMP, requested, idle threads wait: .+\); the fastest CPU path/,
    );
    await useBackend('cpu');
  });
});
