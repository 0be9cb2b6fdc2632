// Converted models are verified: siglip.json records size + SHA-256 of every file, loadSiglip checks each file as
// it arrives, on disk and over HTTP.
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, promises as fsp, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { convertCheckpoint } from '../../converter/convert.js';
import '../../src/index.js';
import { formatComparisons } from '../../src/check/compare.js';
import { readCases, toleranceOf } from '../../src/check/fixture.js';
import { loadSiglip } from '../../src/loader/index.js';
import { FileAccessError, IntegrityError } from '../../src/util/errors.js';
import { useTestBackend } from '../helpers/backend.js';
import { fixture, REPO_ROOT } from '../helpers/fixtures.js';
import { tinyCheckpointWithTokenizer } from '../pipeline/helpers.js';
import { compareWithFixture, tempDir } from './helpers.js';

const SHARD = 64 * 1024;
const CLI = join(REPO_ROOT, 'dist/src/cli/main.js');

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

interface Manifest {
  digests: Record<string, { size: number; sha256: string }>;
}

function readManifest(dir: string): Manifest {
  return JSON.parse(readFileSync(join(dir, 'siglip.json'), 'utf8')) as Manifest;
}

/** Serves `root` read-only on 127.0.0.1; `base(dir)` is the URL of a folder under it. */
async function serve(root: string): Promise<{ base: (dir: string) => string; close: () => void }> {
  const server: Server = createServer((req, res) => {
    const rel = decodeURIComponent(new URL(req.url ?? '/', 'http://127.0.0.1').pathname);
    const path = join(root, rel);
    if (rel.includes('..') || !existsSync(path)) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200).end(readFileSync(path));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { base: (dir) => `${origin}/${dir}/`, close: () => server.close() };
}

describe('converter: verified weights (SHA-256 in siglip.json)', function () {
  this.timeout(120000);
  let root: string;
  let good: string;
  let http: Awaited<ReturnType<typeof serve>>;

  before(async function () {
    await useTestBackend('cpu');
    root = tempDir('verify');
    good = join(root, 'good');
    await convertCheckpoint(tinyCheckpointWithTokenizer(join(root, 'hf')), good, {
      shardBytes: SHARD,
    });
    http = await serve(root);
  });
  after(() => {
    http?.close();
    rmSync(root, { recursive: true, force: true });
  });

  async function copy(name: string): Promise<string> {
    const dir = join(root, name);
    await fsp.cp(good, dir, { recursive: true });
    return dir;
  }

  /** Both ways of reading a copy: the folder on disk and its URL. */
  const locations = (name: string) => [join(root, name), http.base(name)];

  it('records size and SHA-256 of every file written, which match the files', function () {
    const { digests } = readManifest(good);
    const expected = [
      'config.json',
      'preprocessor_config.json',
      'tokenizer.json',
      'tokenizer_config.json',
    ];
    for (const t of ['vision', 'text', 'scores']) {
      const model = JSON.parse(readFileSync(join(good, t, 'model.json'), 'utf8')) as {
        weightsManifest: { paths: string[] }[];
      };
      expected.push(`${t}/model.json`, ...model.weightsManifest[0].paths.map((p) => `${t}/${p}`));
    }
    assert.deepEqual(Object.keys(digests).sort(), expected.sort());
    for (const [rel, d] of Object.entries(digests)) {
      const bytes = readFileSync(join(good, rel));
      assert.equal(d.size, bytes.byteLength, rel);
      assert.equal(d.sha256, sha256(bytes), rel);
    }
  });

  it('a verified load reproduces the fixture, on disk and over HTTP', async function () {
    const tolerance = toleranceOf(await readCases(fixture('siglip_tiny')));
    for (const where of locations('good')) {
      const model = await loadSiglip(where);
      try {
        assert.equal(model.verification, 'verified');
        const rows = await compareWithFixture(model, tolerance);
        assert.ok(rows.length === 8 && rows.every((r) => r.ok), formatComparisons(rows));
      } finally {
        model.dispose();
      }
    }
  });

  /** Expects an IntegrityError naming `file`, the recorded digest and the digest of the bytes now there. */
  async function rejectsNaming(where: string, file: string, expected: string, actual: string) {
    await assert.rejects(loadSiglip(where), (e: Error) => {
      assert.ok(e instanceof IntegrityError, `${e.name}: ${e.message}`);
      assert.ok(e.file.endsWith(file), `${e.file} does not name ${file}`);
      assert.ok(e.message.includes(expected), e.message);
      assert.ok(e.message.includes(actual), e.message);
      assert.equal(e.expected.sha256, expected);
      assert.equal(e.actual.sha256, actual);
      return true;
    });
  }

  it('one flipped byte in a shard (same length): fails naming the file and both digests', async function () {
    const dir = await copy('flipped');
    const rel = 'text/group1-shard3of6.bin';
    const bytes = readFileSync(join(dir, rel));
    bytes[12345] ^= 0x01;
    await fsp.writeFile(join(dir, rel), bytes);
    for (const where of locations('flipped')) {
      await rejectsNaming(where, rel, readManifest(dir).digests[rel].sha256, sha256(bytes));
    }
    // Opting out loads it (with different weights).
    const model = await loadSiglip(dir, { verify: false });
    assert.equal(model.verification, 'skipped');
    model.dispose();
  });

  it('a truncated shard: fails naming the file, both digests and both sizes', async function () {
    const dir = await copy('truncated');
    const rel = 'vision/group1-shard2of7.bin';
    const bytes = readFileSync(join(dir, rel)).subarray(0, 1000);
    await fsp.writeFile(join(dir, rel), bytes);
    for (const where of locations('truncated')) {
      await rejectsNaming(where, rel, readManifest(dir).digests[rel].sha256, sha256(bytes));
      await assert.rejects(loadSiglip(where), /1000 bytes, siglip\.json records 65536/);
    }
  });

  it('two swapped shards (same sizes): fails at the first one', async function () {
    const dir = await copy('swapped');
    const a = join(dir, 'vision', 'group1-shard1of7.bin');
    const b = join(dir, 'vision', 'group1-shard2of7.bin');
    const [ba, bb] = [readFileSync(a), readFileSync(b)];
    await fsp.writeFile(a, bb);
    await fsp.writeFile(b, ba);
    const { digests } = readManifest(dir);
    for (const where of locations('swapped')) {
      await rejectsNaming(
        where,
        'vision/group1-shard1of7.bin',
        digests['vision/group1-shard1of7.bin'].sha256,
        sha256(bb),
      );
    }
  });

  it('a missing shard file: fails naming it (missing file / HTTP 404)', async function () {
    const dir = await copy('missing');
    await fsp.rm(join(dir, 'text', 'group1-shard4of6.bin'));
    const [disk, url] = locations('missing');
    await assert.rejects(
      loadSiglip(disk),
      (e: Error) =>
        e instanceof FileAccessError &&
        /text[/\\]group1-shard4of6\.bin: missing file/.test(e.message),
    );
    await assert.rejects(
      loadSiglip(url),
      (e: Error) =>
        e instanceof FileAccessError && /text\/group1-shard4of6\.bin: HTTP 404/.test(e.message),
    );
  });

  it('an extra file in model.json, or a recorded file model.json leaves out: fails naming it', async function () {
    // model.json edited to read one more shard (and its digest updated, as a careless edit would not be).
    const extra = await copy('extra');
    await fsp.writeFile(join(extra, 'scores', 'group1-shard2of2.bin'), new Uint8Array(8));
    const mj = join(extra, 'scores', 'model.json');
    const model = JSON.parse(readFileSync(mj, 'utf8')) as {
      weightsManifest: { paths: string[] }[];
    };
    model.weightsManifest[0].paths.push('group1-shard2of2.bin');
    const text = new TextEncoder().encode(JSON.stringify(model));
    await fsp.writeFile(mj, text);
    const m = readManifest(extra) as Manifest & Record<string, unknown>;
    m.digests['scores/model.json'] = { size: text.byteLength, sha256: sha256(text) };
    await fsp.writeFile(join(extra, 'siglip.json'), JSON.stringify(m));
    for (const where of locations('extra')) {
      await assert.rejects(
        loadSiglip(where),
        (e: Error) =>
          e instanceof IntegrityError &&
          /scores\/group1-shard2of2\.bin: not listed in the digests of .*siglip\.json/.test(
            e.message,
          ),
      );
    }
    // siglip.json records a shard the tower's model.json does not read.
    const left = await copy('left-out');
    const m2 = readManifest(left) as Manifest & Record<string, unknown>;
    m2.digests['vision/group1-shard8of8.bin'] = { size: 1, sha256: 'a'.repeat(64) };
    await fsp.writeFile(join(left, 'siglip.json'), JSON.stringify(m2));
    for (const where of locations('left-out')) {
      await assert.rejects(
        loadSiglip(where),
        (e: Error) =>
          e instanceof IntegrityError &&
          /vision\/model\.json: does not reference vision\/group1-shard8of8\.bin/.test(e.message),
      );
    }
  });

  it('a siglip.json without digests (older converter) loads with a warning', async function () {
    const dir = await copy('old');
    const m = readManifest(dir) as Partial<Manifest>;
    delete m.digests;
    await fsp.writeFile(join(dir, 'siglip.json'), JSON.stringify(m));
    for (const where of locations('old')) {
      const warnings: string[] = [];
      const model = await loadSiglip(where, { onWarning: (w) => warnings.push(w) });
      try {
        assert.equal(model.verification, 'no-digests');
        assert.equal(warnings.length, 1);
        assert.match(warnings[0], /siglip\.json: records no SHA-256 digests .*loading without/);
      } finally {
        model.dispose();
      }
    }
  });

  it('the tokenizer file is verified by the pipeline; --no-verify skips the check', async function () {
    const dir = await copy('tokenizer');
    const tok = join(dir, 'tokenizer.json');
    await fsp.writeFile(tok, readFileSync(tok, 'utf8').replace('"model"', '"model" '));
    const run = (...args: string[]) =>
      new Promise<{ status: number | null; stderr: string }>((resolve, reject) => {
        const child = spawn(process.execPath, [CLI, 'embed', '--text', 'a cat', ...args], {
          env: { ...process.env, SIGLIP2_MODEL: '' },
        });
        let stderr = '';
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        child.on('error', reject);
        child.on('close', (status) => resolve({ status, stderr }));
      });
    const bad = await run('--model', dir, '--backend', 'cpu');
    assert.notEqual(bad.status, 0);
    assert.match(
      bad.stderr,
      /tokenizer\.json: SHA-256 mismatch, expected [0-9a-f]{64}, got [0-9a-f]{64}/,
    );
    const ok = await run('--model', dir, '--backend', 'cpu', '--no-verify');
    assert.equal(ok.status, 0, ok.stderr);
  });
});
