import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type DownloadProgress,
  globToRegExp,
  hubCacheDir,
  snapshotDownload,
} from '../../src/hub/download.js';
import { encodeSafetensors, readSafetensors } from '../../src/io/safetensors.js';
import { fixture } from '../helpers/fixtures.js';
import { type MockHub, type MockHubOptions, startMockHub } from './mock_hub.js';

const REPO = 'google/siglip-tiny-mock';
const GATED = 'google/siglip-tiny-gated';
const SHARDED = 'google/siglip-tiny-sharded';
const ENV_KEYS = [
  'HF_ENDPOINT',
  'HF_TOKEN',
  'HUGGING_FACE_HUB_TOKEN',
  'HF_HOME',
  'HF_HUB_CACHE',
  'HUGGINGFACE_HUB_CACHE',
  'HF_HUB_OFFLINE',
];

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const gitSha1 = (b: Buffer) =>
  createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');

describe('hub snapshotDownload (against a local mock hub)', function () {
  let root: string;
  let repoDir: string;
  let shardDir: string;
  let savedEnv: Record<string, string | undefined>;
  const hubs: MockHub[] = [];
  let caches = 0;
  const newCache = () => join(root, `cache${caches++}`);
  const modelBytes = () => readFileSync(fixture('siglip_tiny', 'model.safetensors'));

  async function hub(extra: Partial<MockHubOptions> = {}): Promise<MockHub> {
    const h = await startMockHub({
      repos: [
        { id: REPO, folder: repoDir, refs: ['v1.0'] },
        { id: GATED, folder: repoDir, gated: true },
        { id: SHARDED, folder: shardDir },
      ],
      ...extra,
    });
    hubs.push(h);
    return h;
  }

  before(async function () {
    savedEnv = Object.fromEntries(ENV_KEYS.map((k) => [k, process.env[k]]));
    for (const k of ENV_KEYS) delete process.env[k];
    root = mkdtempSync(join(tmpdir(), 'siglip2-hub-'));
    repoDir = join(root, 'repo');
    mkdirSync(join(repoDir, 'extra'), { recursive: true });
    for (const f of ['config.json', 'model.safetensors', 'preprocessor_config.json']) {
      copyFileSync(fixture('siglip_tiny', f), join(repoDir, f));
    }
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) {
      copyFileSync(fixture('tokenizer_gemma_siglip2', f), join(repoDir, f));
    }
    writeFileSync(join(repoDir, 'README.md'), '# not part of the default download\n');
    writeFileSync(join(repoDir, 'extra', 'notes.txt'), 'nested file\n');
    // Same content as config.json: one blob, two snapshot links.
    copyFileSync(fixture('siglip_tiny', 'config.json'), join(repoDir, 'extra', 'config-copy.json'));

    // A sharded copy of the same checkpoint: two shards and model.safetensors.index.json.
    shardDir = join(root, 'sharded');
    mkdirSync(shardDir);
    copyFileSync(fixture('siglip_tiny', 'config.json'), join(shardDir, 'config.json'));
    const tensors = [
      ...(await readSafetensors(fixture('siglip_tiny', 'model.safetensors'))).values(),
    ];
    const half = Math.ceil(tensors.length / 2);
    const shards = [tensors.slice(0, half), tensors.slice(half)];
    const weightMap: Record<string, string> = {};
    shards.forEach((group, i) => {
      const name = `model-0000${i + 1}-of-00002.safetensors`;
      writeFileSync(join(shardDir, name), encodeSafetensors(group));
      for (const t of group) weightMap[t.name] = name;
    });
    writeFileSync(
      join(shardDir, 'model.safetensors.index.json'),
      JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }),
    );
  });

  after(async function () {
    await Promise.all(hubs.map((h) => h.close()));
    for (const k of ENV_KEYS) {
      if (savedEnv[k] === undefined) delete process.env[k];
      else process.env[k] = savedEnv[k];
    }
    rmSync(root, { recursive: true, force: true });
  });

  afterEach(function () {
    for (const k of ENV_KEYS) delete process.env[k];
  });

  it('downloads the default SigLIP files into the standard cache layout', async function () {
    const h = await hub();
    const cacheDir = newCache();
    const events: DownloadProgress[] = [];
    const snap = await snapshotDownload(REPO, {
      endpoint: h.url,
      cacheDir,
      onProgress: (p) => events.push(p),
    });
    const commit = h.commitOf(REPO);
    const storage = join(cacheDir, 'models--google--siglip-tiny-mock');
    assert.equal(snap, join(storage, 'snapshots', commit));
    assert.equal(readFileSync(join(storage, 'refs', 'main'), 'utf8'), commit);
    assert.deepEqual(readdirSync(snap).sort(), [
      'config.json',
      'model.safetensors',
      'preprocessor_config.json',
      'tokenizer.json',
      'tokenizer_config.json',
    ]);
    // Bytes equal the fixtures; blobs are named by the LFS sha256 / git blob sha1, linked relatively.
    const model = modelBytes();
    assert.ok(readFileSync(join(snap, 'model.safetensors')).equals(model));
    assert.ok(lstatSync(join(snap, 'model.safetensors')).isSymbolicLink());
    assert.equal(readlinkSync(join(snap, 'model.safetensors')), `../../blobs/${sha256(model)}`);
    const config = readFileSync(fixture('siglip_tiny', 'config.json'));
    assert.ok(readFileSync(join(snap, 'config.json')).equals(config));
    assert.ok(existsSync(join(storage, 'blobs', gitSha1(config))));
    const tok = readFileSync(fixture('tokenizer_gemma_siglip2', 'tokenizer.json'));
    assert.ok(readFileSync(join(snap, 'tokenizer.json')).equals(tok));
    assert.deepEqual(
      readdirSync(join(storage, 'blobs')).filter((b) => b.endsWith('.incomplete')),
      [],
    );
    // The weights read back as the fixture's numbers.
    const logitScale = (await readSafetensors(join(snap, 'model.safetensors'))).get('logit_scale');
    assert.ok(logitScale && Math.abs(logitScale.data[0] - Math.log(10)) < 1e-6);
    // Progress ends at the full size of each file.
    const last = events.filter((e) => e.file === 'model.safetensors').at(-1);
    assert.deepEqual(last, {
      file: 'model.safetensors',
      loaded: model.length,
      total: model.length,
    });
    assert.ok(events.some((e) => e.file === 'model.safetensors' && e.loaded < e.total));
    // Only non-TTY-free files: README.md and extra/ were not fetched.
    assert.ok(!h.requests.some((r) => r.url.includes('README.md') || r.url.includes('notes.txt')));
  });

  it('serves a second call from the cache without downloading any file', async function () {
    const h = await hub();
    const cacheDir = newCache();
    const first = await snapshotDownload(REPO, { endpoint: h.url, cacheDir, onProgress: () => {} });
    assert.equal(h.transfers().length, 5);
    h.requests.length = 0;
    const second = await snapshotDownload(REPO, {
      endpoint: h.url,
      cacheDir,
      onProgress: () => {},
    });
    assert.equal(second, first);
    assert.deepEqual(h.transfers(), []);
    assert.ok(
      h.requests.every((r) => r.url.startsWith('/api/')),
      'only metadata requests',
    );
    // A missing snapshot link is restored from the blob, still without a transfer.
    rmSync(join(first, 'config.json'));
    await snapshotDownload(REPO, { endpoint: h.url, cacheDir, onProgress: () => {} });
    assert.deepEqual(h.transfers(), []);
    assert.ok(
      readFileSync(join(first, 'config.json')).equals(
        readFileSync(fixture('siglip_tiny', 'config.json')),
      ),
    );
  });

  it('resumes a transfer cut halfway with a Range request', async function () {
    const model = modelBytes();
    const half = Math.floor(model.length / 2);
    const h = await hub({ cut: { file: 'model.safetensors', afterBytes: half, times: 1 } });
    const cacheDir = newCache();
    const snap = await snapshotDownload(REPO, {
      endpoint: h.url,
      cacheDir,
      retryDelayMs: 0,
      onProgress: () => {},
    });
    const cdn = h.requests.filter((r) => r.url.startsWith('/cdn/'));
    assert.equal(cdn.length, 2);
    assert.equal(cdn[0].headers.range, undefined);
    // The resume starts where the kept partial file ends: at most what the server sent before the cut (the last
    // bytes in flight may not have reached the file), and never from zero.
    const resumed = /^bytes=(\d+)-$/.exec(String(cdn[1].headers.range));
    assert.ok(resumed, `a Range request, got ${cdn[1].headers.range}`);
    const from = Number(resumed[1]);
    assert.ok(from > 0 && from <= half, `resumed from ${from}, sent ${half} before the cut`);
    assert.equal(cdn[1].status, 206);
    assert.ok(readFileSync(join(snap, 'model.safetensors')).equals(model));
  });

  it('resumes a partial .incomplete blob left by an earlier run, and rejects a corrupt one', async function () {
    const model = modelBytes();
    const h = await hub();
    const cacheDir = newCache();
    const blobs = join(cacheDir, 'models--google--siglip-tiny-mock', 'blobs');
    mkdirSync(blobs, { recursive: true });
    const incomplete = join(blobs, `${sha256(model)}.incomplete`);
    writeFileSync(incomplete, model.subarray(0, 1000));
    const snap = await snapshotDownload(REPO, { endpoint: h.url, cacheDir, onProgress: () => {} });
    assert.deepEqual(
      h.requests.filter((r) => r.url.startsWith('/cdn/')).map((r) => r.headers.range),
      ['bytes=1000-'],
    );
    assert.ok(readFileSync(join(snap, 'model.safetensors')).equals(model));

    // Wrong bytes in the partial file: the sha256 check fails, names the file, and drops the partial.
    const cache2 = newCache();
    const blobs2 = join(cache2, 'models--google--siglip-tiny-mock', 'blobs');
    mkdirSync(blobs2, { recursive: true });
    const bad = join(blobs2, `${sha256(model)}.incomplete`);
    writeFileSync(bad, Buffer.alloc(1000, 7));
    await assert.rejects(
      snapshotDownload(REPO, { endpoint: h.url, cacheDir: cache2, onProgress: () => {} }),
      /sha256 mismatch for model\.safetensors/,
    );
    assert.ok(!existsSync(bad));
    const again = await snapshotDownload(REPO, {
      endpoint: h.url,
      cacheDir: cache2,
      onProgress: () => {},
    });
    assert.ok(readFileSync(join(again, 'model.safetensors')).equals(model));
  });

  it('gives up with a clear error when the network keeps failing', async function () {
    const h = await hub({ cut: { file: 'model.safetensors', afterBytes: 0, times: 100 } });
    await assert.rejects(
      snapshotDownload(REPO, {
        endpoint: h.url,
        cacheDir: newCache(),
        retries: 2,
        retryDelayMs: 0,
        onProgress: () => {},
      }),
      /download of model\.safetensors from google\/siglip-tiny-mock failed after 3 attempts .*run again to resume/,
    );
  });

  it('rejects a file whose size differs from the listing', async function () {
    const h = await hub();
    // A fetch that appends bytes to the CDN body (also checks the fetch option is used).
    const padded: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      if (!String(input).includes('/cdn/')) return res;
      const body = Buffer.concat([Buffer.from(await res.arrayBuffer()), Buffer.from('extra')]);
      return new Response(body, { status: res.status, headers: res.headers });
    };
    await assert.rejects(
      snapshotDownload(REPO, {
        endpoint: h.url,
        cacheDir: newCache(),
        fetch: padded,
        onProgress: () => {},
      }),
      /model\.safetensors: server sent more than the 822128 bytes/,
    );
  });

  it('rejects an LFS file whose X-Linked-Etag disagrees with the listed sha256', async function () {
    const h = await hub();
    const forged: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      if (!res.headers.has('x-linked-etag')) return res;
      const headers = new Headers(res.headers);
      headers.set('x-linked-etag', `"${'0'.repeat(64)}"`);
      return new Response(null, { status: res.status, headers });
    };
    await assert.rejects(
      snapshotDownload(REPO, {
        endpoint: h.url,
        cacheDir: newCache(),
        fetch: forged,
        onProgress: () => {},
      }),
      /headers for model\.safetensors disagree with its file listing: X-Linked-Etag "0{64}" is not the listed sha256/,
    );
  });

  it('honours HF_ENDPOINT and HF_HOME', async function () {
    const h = await hub();
    const home = join(root, 'hf_home');
    process.env.HF_ENDPOINT = h.url + '/';
    process.env.HF_HOME = home;
    const snap = await snapshotDownload(REPO, { onProgress: () => {} });
    assert.equal(
      snap,
      join(home, 'hub', 'models--google--siglip-tiny-mock', 'snapshots', h.commitOf(REPO)),
    );
    assert.ok(readFileSync(join(snap, 'model.safetensors')).equals(modelBytes()));
    assert.ok(h.requests.length > 0);
  });

  it('honours HF_TOKEN for a gated repo, and explains 401 without or with a wrong token', async function () {
    const h = await hub();
    await assert.rejects(
      snapshotDownload(GATED, { endpoint: h.url, cacheDir: newCache(), onProgress: () => {} }),
      (e: Error) => {
        assert.match(e.message, /google\/siglip-tiny-gated is gated or private \(HTTP 401\)/);
        assert.match(e.message, /set HF_TOKEN/);
        assert.match(
          e.message,
          /accept the licence on the model page http:\/\/127\.0\.0\.1:\d+\/google\/siglip-tiny-gated/,
        );
        return true;
      },
    );
    process.env.HF_TOKEN = 'hf_wrong';
    await assert.rejects(
      snapshotDownload(GATED, { endpoint: h.url, cacheDir: newCache(), onProgress: () => {} }),
      /token given \(HF_TOKEN or the token option\) was rejected/,
    );
    process.env.HF_TOKEN = h.validToken;
    h.requests.length = 0;
    const snap = await snapshotDownload(GATED, {
      endpoint: h.url,
      cacheDir: newCache(),
      onProgress: () => {},
    });
    assert.ok(readFileSync(join(snap, 'model.safetensors')).equals(modelBytes()));
    const toHub = h.requests.filter((r) => !r.url.startsWith('/cdn/'));
    assert.ok(toHub.length >= 7);
    for (const r of toHub) assert.equal(r.headers.authorization, `Bearer ${h.validToken}`);
    // A token that does not start with hf_ is passed through too (the hub client alone refuses it).
    await assert.rejects(
      snapshotDownload(GATED, {
        endpoint: h.url,
        cacheDir: newCache(),
        token: 'api_org_x',
        onProgress: () => {},
      }),
      /was rejected/,
    );
  });

  it('names the missing repo, revision or file on 404', async function () {
    const h = await hub();
    const cacheDir = newCache();
    await assert.rejects(
      snapshotDownload('google/no-such-model', { endpoint: h.url, cacheDir }),
      /repository google\/no-such-model not found on http:\/\/127\.0\.0\.1:\d+/,
    );
    await assert.rejects(
      snapshotDownload(REPO, { endpoint: h.url, cacheDir, revision: 'v9' }),
      /revision "v9" not found in google\/siglip-tiny-mock/,
    );
    await assert.rejects(
      snapshotDownload('not a repo', { endpoint: h.url, cacheDir }),
      /invalid Hugging Face repo id/,
    );
    await assert.rejects(
      snapshotDownload(REPO, { endpoint: h.url, cacheDir, allowPatterns: ['*.bin'] }),
      /no file of google\/siglip-tiny-mock at main matches \["\*\.bin"\]; the repo has: /,
    );
  });

  it('downloads a sharded checkpoint through model.safetensors.index.json', async function () {
    const h = await hub();
    const snap = await snapshotDownload(SHARDED, {
      endpoint: h.url,
      cacheDir: newCache(),
      onProgress: () => {},
    });
    assert.deepEqual(readdirSync(snap).sort(), [
      'config.json',
      'model-00001-of-00002.safetensors',
      'model-00002-of-00002.safetensors',
      'model.safetensors.index.json',
    ]);
    const expected = await readSafetensors(fixture('siglip_tiny', 'model.safetensors'));
    const index = JSON.parse(readFileSync(join(snap, 'model.safetensors.index.json'), 'utf8')) as {
      weight_map: Record<string, string>;
    };
    const got = new Map([
      ...(await readSafetensors(join(snap, 'model-00001-of-00002.safetensors'))),
      ...(await readSafetensors(join(snap, 'model-00002-of-00002.safetensors'))),
    ]);
    assert.equal(got.size, expected.size);
    assert.equal(Object.keys(index.weight_map).length, expected.size);
    for (const [name, t] of expected) {
      const g = got.get(name);
      assert.ok(g, `tensor ${name} missing from the shards`);
      assert.deepEqual(g.shape, t.shape);
      assert.deepEqual(Array.from(g.data), Array.from(t.data), name);
    }
  });

  it('takes allowPatterns, tags (refs/<tag>) and commit revisions, and nested paths', async function () {
    const h = await hub();
    const cacheDir = newCache();
    const snap = await snapshotDownload(REPO, {
      endpoint: h.url,
      cacheDir,
      revision: 'v1.0',
      allowPatterns: ['*.json', 'extra/*'],
      onProgress: () => {},
    });
    const commit = h.commitOf(REPO);
    const storage = join(cacheDir, 'models--google--siglip-tiny-mock');
    assert.equal(readFileSync(join(storage, 'refs', 'v1.0'), 'utf8'), commit);
    assert.deepEqual(readdirSync(snap).sort(), [
      'config.json',
      'extra',
      'preprocessor_config.json',
      'tokenizer.json',
      'tokenizer_config.json',
    ]);
    assert.equal(readFileSync(join(snap, 'extra', 'notes.txt'), 'utf8'), 'nested file\n');
    assert.equal(
      readlinkSync(join(snap, 'extra', 'config-copy.json')),
      join('..', readlinkSync(join(snap, 'config.json'))),
    );
    assert.equal(h.transfers().filter((r) => r.url.endsWith('/config.json')).length, 1);
    assert.equal(h.transfers().filter((r) => r.url.includes('config-copy')).length, 0);
    assert.equal(
      readlinkSync(join(snap, 'extra', 'notes.txt')).startsWith('../../../blobs/'),
      true,
    );
    const bySha = await snapshotDownload(REPO, {
      endpoint: h.url,
      cacheDir,
      revision: commit,
      allowPatterns: ['config.json'],
      onProgress: () => {},
    });
    assert.equal(bySha, snap);
    assert.ok(!existsSync(join(storage, 'refs', commit)));
  });

  it('works offline from the cache with HF_HUB_OFFLINE, and falls back to it when the hub is down', async function () {
    const h = await hub();
    const cacheDir = newCache();
    const snap = await snapshotDownload(REPO, { endpoint: h.url, cacheDir, onProgress: () => {} });
    process.env.HF_HUB_OFFLINE = '1';
    h.requests.length = 0;
    assert.equal(await snapshotDownload(REPO, { endpoint: h.url, cacheDir }), snap);
    assert.equal(h.requests.length, 0);
    await assert.rejects(
      snapshotDownload(REPO, { endpoint: h.url, cacheDir: newCache() }),
      /offline mode \(HF_HUB_OFFLINE\): no cached snapshot of google\/siglip-tiny-mock at revision main/,
    );
    delete process.env.HF_HUB_OFFLINE;
    const down = await hub();
    const url = down.url;
    await down.close();
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    try {
      assert.equal(await snapshotDownload(REPO, { endpoint: url, cacheDir }), snap);
      await assert.rejects(
        snapshotDownload(REPO, { endpoint: url, cacheDir: newCache() }),
        /cannot reach the hub at http:\/\/127\.0\.0\.1:\d+ for google\/siglip-tiny-mock/,
      );
    } finally {
      await new Promise((r) => setImmediate(r));
      process.off('warning', onWarning);
    }
    assert.ok(warnings.some((w) => w.includes('using the cached snapshot')));
  });
});

describe('hub cache location and patterns', () => {
  it('picks HF_HUB_CACHE, then HF_HOME/hub, then ~/.cache/huggingface/hub', () => {
    assert.equal(hubCacheDir({ HF_HUB_CACHE: '/a', HF_HOME: '/b' }), '/a');
    assert.equal(hubCacheDir({ HF_HOME: '/b' }), join('/b', 'hub'));
    assert.equal(hubCacheDir({ XDG_CACHE_HOME: '/x' }), join('/x', 'huggingface', 'hub'));
  });

  it('matches globs as Python fnmatch does', () => {
    assert.ok(globToRegExp('*.json').test('config.json'));
    assert.ok(globToRegExp('*.json').test('sub/dir/config.json'));
    assert.ok(!globToRegExp('*.json').test('model.safetensors'));
    assert.ok(
      globToRegExp('model-?????-of-*.safetensors').test('model-00001-of-00002.safetensors'),
    );
    assert.ok(globToRegExp('[!m]*').test('config.json'));
    assert.ok(!globToRegExp('[!m]*').test('model.safetensors'));
    assert.ok(globToRegExp('a+b(c).txt').test('a+b(c).txt'));
  });
});
