// The pipeline's conversion cache: a hub model whose conversion is killed midway is not taken as converted; the
// next use converts it again and removes the leftover.
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { loadSiglip } from '../../src/loader/index.js';
import { resolvePipelineModel } from '../../src/pipeline/node.js';
import { useTestBackend } from '../helpers/backend.js';
import { CLI, SLOW_WRITER } from '../helpers/slow_writer.js';
import { tempDir } from '../converter/helpers.js';
import { startMockHub, type MockHub } from '../hub/mock_hub.js';
import { tinyCheckpointWithTokenizer } from './helpers.js';

describe('pipeline conversion cache: a conversion killed midway', function () {
  this.timeout(120000);
  const repo = 'google/siglip-tiny-mock';
  let root: string;
  let hub: MockHub;

  before(async () => {
    await useTestBackend('cpu');
    root = tempDir('cache-kill');
    hub = await startMockHub({
      repos: [{ id: repo, folder: tinyCheckpointWithTokenizer(join(root, 'hf')) }],
    });
  });
  after(async () => {
    await hub?.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('is not taken as converted; the next use converts again and removes the leftover', async function () {
    const cacheDir = join(root, 'cache');
    const hubCacheDir = join(root, 'hub-cache');
    const child = spawn(
      process.execPath,
      ['--import', SLOW_WRITER, CLI, 'embed', '--text', 'a cat', '--backend', 'cpu'],
      {
        stdio: 'ignore',
        env: {
          ...process.env,
          SIGLIP2_MODEL: repo,
          HF_ENDPOINT: hub.url,
          HF_HUB_CACHE: hubCacheDir,
          SIGLIP2_CACHE: cacheDir,
          HF_TOKEN: '',
        },
      },
    );
    const exited = new Promise((r) => child.on('exit', r));
    const shardWritten = () =>
      existsSync(cacheDir) &&
      readdirSync(cacheDir)
        .filter((f) => f.includes('.partial-'))
        .some((p) => {
          const vision = join(cacheDir, p, 'vision');
          return existsSync(vision) && readdirSync(vision).some((f) => f.endsWith('.bin'));
        });
    try {
      const deadline = Date.now() + 60_000;
      while (!shardWritten()) {
        if (child.exitCode !== null) throw new Error(`the CLI exited early (${child.exitCode})`);
        if (Date.now() > deadline) throw new Error('no shard written within 60 s');
        await new Promise((r) => setTimeout(r, 20));
      }
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
    const commit = hub.commitOf(repo);
    const out = join(cacheDir, `google--siglip-tiny-mock--${commit}--float32`);
    assert.ok(!existsSync(out), 'the killed conversion left a folder at the cache location');
    assert.equal(readdirSync(cacheDir).filter((f) => f.includes('.partial-')).length, 1);

    const next = await resolvePipelineModel(repo, { endpoint: hub.url, cacheDir, hubCacheDir });
    assert.equal(next.location, out);
    assert.equal(next.cached, false);
    assert.deepEqual(
      readdirSync(cacheDir).filter((f) => f.includes('.partial-')),
      [],
    );
    const model = await loadSiglip(out);
    assert.equal(model.verification, 'verified');
    model.dispose();
  });
});
