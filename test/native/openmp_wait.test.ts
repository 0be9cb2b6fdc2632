import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { openmpWaits } from '../../src/backends/native/addon.js';
import { REPO_ROOT } from '../helpers/fixtures.js';
import { requireNative } from './helpers.js';

/** The useBackend('native') reason line and OMP_WAIT_POLICY as seen in a fresh process with `env`. */
function freshProcess(env: NodeJS.ProcessEnv): { reason: string; policy: string } {
  const script = `
    const { useBackend } = await import(${JSON.stringify(join(REPO_ROOT, 'dist/src/backends/index.js'))});
    const r = await useBackend('native');
    console.log(JSON.stringify({ reason: r.reason, policy: String(process.env.OMP_WAIT_POLICY) }));`;
  const clean = { ...process.env };
  delete clean.GOMP_SPINCOUNT;
  delete clean.OMP_WAIT_POLICY;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8',
    env: { ...clean, ...env },
    timeout: 60_000,
  });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as { reason: string; policy: string };
}

describe('native backend: how idle OpenMP threads wait', function () {
  before(function () {
    requireNative(this);
  });

  it('sleeps at once by default, and says so in the reason line', function () {
    this.timeout(60_000);
    const r = freshProcess({});
    assert.equal(r.policy, 'passive');
    assert.match(r.reason, /idle threads wait: passive/);
  });

  it('spins when GOMP_SPINCOUNT is given, without forcing the passive policy over it', function () {
    this.timeout(60_000);
    const r = freshProcess({ GOMP_SPINCOUNT: '300000' });
    assert.equal(r.policy, 'undefined');
    assert.match(r.reason, /idle threads wait: spin \(GOMP_SPINCOUNT=300000\)/);
  });

  it('names a policy the user chose', () => {
    assert.equal(openmpWaits({}), 'passive');
    assert.equal(openmpWaits({ OMP_WAIT_POLICY: 'PASSIVE' }), 'passive');
    assert.equal(openmpWaits({ OMP_WAIT_POLICY: 'active' }), 'OMP_WAIT_POLICY=active');
    assert.equal(openmpWaits({ GOMP_SPINCOUNT: '1000' }), 'spin (GOMP_SPINCOUNT=1000)');
  });
});
