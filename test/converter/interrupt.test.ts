// A conversion killed midway never leaves a folder a later run takes as complete.
import { strict as assert } from 'node:assert';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { convertCheckpoint } from '../../converter/convert.js';
import { loadSiglip } from '../../src/loader/index.js';
import '../../src/loader/node.js';
import { useTestBackend } from '../helpers/backend.js';
import { CLI, SLOW_WRITER } from '../helpers/slow_writer.js';
import { fixture } from '../helpers/fixtures.js';
import { tempDir } from './helpers.js';

function partials(parent: string, name: string): string[] {
  return readdirSync(parent).filter((f) => f.startsWith(`${name}.partial-`));
}

/** Resolves once some `<out>.partial-*` folder holds a written shard. */
async function firstShard(parent: string, name: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`convert exited early (${child.exitCode})`);
    for (const p of partials(parent, name)) {
      const vision = join(parent, p, 'vision');
      if (existsSync(vision) && readdirSync(vision).some((f) => f.endsWith('.bin'))) return;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('no shard written within 60 s');
}

describe('converter: an interrupted conversion', function () {
  this.timeout(120000);
  let root: string;
  before(async () => {
    await useTestBackend('cpu');
    root = tempDir('interrupt');
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('killed after its first shard leaves no output folder; the next run converts and cleans up', async function () {
    const out = join(root, 'out');
    const child = spawn(
      process.execPath,
      [
        '--import',
        SLOW_WRITER,
        CLI,
        'convert',
        fixture('siglip_tiny'),
        out,
        '--shard-size-mb',
        '0.0625',
      ],
      { stdio: 'ignore' },
    );
    const exited = new Promise((r) => child.on('exit', r));
    try {
      await firstShard(root, 'out', child);
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
    assert.equal(child.signalCode, 'SIGKILL');
    // Nothing at the output path; the half-written conversion sits in a temporary sibling.
    assert.ok(!existsSync(out), 'the killed conversion left an output folder');
    assert.equal(partials(root, 'out').length, 1);
    await assert.rejects(loadSiglip(out), /siglip\.json: missing file/);

    // The next run converts from scratch, and removes the leftover of the dead process.
    await convertCheckpoint(fixture('siglip_tiny'), out, { shardBytes: 64 * 1024 });
    assert.deepEqual(partials(root, 'out'), []);
    const model = await loadSiglip(out);
    assert.equal(model.verification, 'verified');
    model.dispose();
  });

  it('a failed conversion removes its temporary folder; --overwrite replaces a previous one whole', async function () {
    const out = join(root, 'again');
    await convertCheckpoint(fixture('siglip_tiny'), out, { shardBytes: 64 * 1024 });
    // A conversion that fails midway (here its progress callback throws after some tensors are written).
    await assert.rejects(
      convertCheckpoint(fixture('siglip_tiny'), join(root, 'failed'), {
        onProgress: (p) => {
          if (p.tensorsDone === 5) throw new Error('stop here');
        },
      }),
      /stop here/,
    );
    assert.deepEqual(partials(root, 'failed'), []);
    assert.ok(!existsSync(join(root, 'failed')));
    await assert.rejects(convertCheckpoint(fixture('siglip_tiny'), out), /folder is not empty/);
    const r = await convertCheckpoint(fixture('siglip_tiny'), out, {
      overwrite: true,
      towers: 'vision',
    });
    assert.deepEqual(Object.keys(r.manifest.towers), ['vision']);
    assert.ok(!existsSync(join(out, 'text')), 'the previous conversion was not replaced whole');
    assert.deepEqual(
      readdirSync(root).filter((f) => f.startsWith('again.')),
      [],
    );
  });
});
