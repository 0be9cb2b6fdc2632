import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMockHub, type MockHub } from '../hub/mock_hub.js';
import { REPO_ROOT, fixture } from '../helpers/fixtures.js';

const CLI = join(REPO_ROOT, 'dist/src/cli/main.js');

// `siglip2 convert <repo-id>` end to end: download from a hub (a local mock on 127.0.0.1), then convert.
describe('siglip2 convert from the hub', () => {
  let hub: MockHub;
  let root: string;

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'siglip2-hubconv-'));
    const repo = join(root, 'repo');
    mkdirSync(repo);
    for (const f of ['config.json', 'model.safetensors', 'preprocessor_config.json']) {
      copyFileSync(fixture('siglip_tiny', f), join(repo, f));
    }
    hub = await startMockHub({ repos: [{ id: 'google/siglip-tiny-mock', folder: repo }] });
  });
  after(() => hub.close());

  // Asynchronous: the mock hub answers from this process, so its event loop must keep running.
  function convert(
    ...args: string[]
  ): Promise<{ status: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [CLI, 'convert', ...args, '--json'], {
        env: { ...process.env, HF_ENDPOINT: hub.url, HF_HOME: join(root, 'hf'), HF_TOKEN: '' },
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', reject);
      child.on('close', (status) => resolve({ status, stdout, stderr }));
    });
  }

  it('downloads the repo into the HF cache and converts it, recording repo and revision', async () => {
    const out = join(root, 'out');
    const r = await convert('google/siglip-tiny-mock', out);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(existsSync(join(out, 'vision', 'model.json')));
    const manifest = JSON.parse(readFileSync(join(out, 'siglip.json'), 'utf8')) as {
      source: { repo?: string; revision?: string };
    };
    assert.equal(manifest.source.repo, 'google/siglip-tiny-mock');
    assert.equal(manifest.source.revision, hub.commitOf('google/siglip-tiny-mock'));
    assert.ok(existsSync(join(root, 'hf', 'hub', 'models--google--siglip-tiny-mock', 'blobs')));
  });

  it('a repo the hub does not have gives a clear 404 error', async () => {
    const r = await convert('google/no-such-model', join(root, 'none'));
    assert.equal(r.status, 2);
    assert.match(r.stderr, /google\/no-such-model/);
    assert.match(r.stderr, /not found/i);
  });
});
