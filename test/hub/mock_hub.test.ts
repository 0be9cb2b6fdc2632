import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { snapshotDownload } from '../../src/hub/download.js';
import { fixture } from '../helpers/fixtures.js';
import { type MockHub, startMockHub } from './mock_hub.js';

const REPO = 'google/siglip-tiny';

/** The mock hub itself answers like huggingface.co; these pin the behaviour the client relies on. */
describe('mock hub (test double for huggingface.co)', () => {
  let hub: MockHub;
  let cache: string;
  const model = () => readFileSync(fixture('siglip_tiny', 'model.safetensors'));
  before(async () => {
    hub = await startMockHub({
      repos: [
        { id: REPO, folder: fixture('siglip_tiny') },
        { id: 'google/gated', folder: fixture('siglip_tiny'), gated: true },
      ],
      treePageSize: 2,
    });
    cache = mkdtempSync(join(tmpdir(), 'siglip2-mockhub-'));
  });
  after(async () => {
    await hub.close();
    await hub.close();
    rmSync(cache, { recursive: true, force: true });
  });

  it('listens on loopback', () => {
    assert.match(hub.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('answers HEAD on a regular file with the hub headers', async () => {
    const config = readFileSync(fixture('siglip_tiny', 'config.json'));
    const res = await fetch(`${hub.url}/${REPO}/resolve/main/config.json`, { method: 'HEAD' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-repo-commit'), hub.commitOf(REPO));
    const gitOid = createHash('sha1')
      .update(`blob ${config.length}\0`)
      .update(config)
      .digest('hex');
    assert.equal(res.headers.get('etag'), `"${gitOid}"`);
    assert.equal(res.headers.get('content-length'), String(config.length));
    assert.equal(res.headers.get('accept-ranges'), 'bytes');
  });

  it('redirects LFS files to a signed CDN path with X-Linked-Etag / X-Linked-Size, and serves ranges there', async () => {
    const bytes = model();
    const res = await fetch(`${hub.url}/${REPO}/resolve/main/model.safetensors`, {
      redirect: 'manual',
    });
    assert.equal(res.status, 302);
    const sha = createHash('sha256').update(bytes).digest('hex');
    assert.equal(res.headers.get('x-linked-etag'), `"${sha}"`);
    assert.equal(res.headers.get('x-linked-size'), String(bytes.length));
    const location = res.headers.get('location') ?? '';
    assert.match(location, new RegExp(`^/cdn/${sha}\\?sig=`));
    const part = await fetch(hub.url + location, { headers: { Range: 'bytes=100-199' } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), `bytes 100-199/${bytes.length}`);
    assert.ok(Buffer.from(await part.arrayBuffer()).equals(bytes.subarray(100, 200)));
    const tail = await fetch(hub.url + location, { headers: { Range: `bytes=${bytes.length}-` } });
    assert.equal(tail.status, 416);
    assert.equal(tail.headers.get('content-range'), `bytes */${bytes.length}`);
    const forged = await fetch(`${hub.url}/cdn/${sha}?sig=0000`);
    assert.equal(forged.status, 403);
  });

  it('answers 401 and 404 with the hub error codes', async () => {
    const gated = await fetch(`${hub.url}/api/models/google/gated/revision/main`);
    assert.equal(gated.status, 401);
    assert.equal(gated.headers.get('x-error-code'), 'GatedRepo');
    const wrong = await fetch(`${hub.url}/api/models/${REPO}/revision/main`, {
      headers: { Authorization: 'Bearer hf_nope' },
    });
    assert.equal(wrong.status, 401);
    assert.equal(
      wrong.headers.get('x-error-message'),
      'Invalid credentials in Authorization header',
    );
    const cases: [string, string][] = [
      ['/api/models/google/nothing/revision/main', 'RepoNotFound'],
      [`/api/models/${REPO}/revision/nobranch`, 'RevisionNotFound'],
      [`/${REPO}/resolve/main/nofile.json`, 'EntryNotFound'],
    ];
    for (const [path, code] of cases) {
      const res = await fetch(hub.url + path);
      assert.equal(res.status, 404, path);
      assert.equal(res.headers.get('x-error-code'), code, path);
    }
  });

  it('pages the tree listing with Link headers, which the client follows', async () => {
    const first = await fetch(`${hub.url}/api/models/${REPO}/tree/main?recursive=true`);
    assert.equal(((await first.json()) as unknown[]).length, 2);
    assert.match(first.headers.get('link') ?? '', /rel="next"/);
    const snap = await snapshotDownload(REPO, {
      endpoint: hub.url,
      cacheDir: cache,
      onProgress: () => {},
    });
    assert.ok(readFileSync(join(snap, 'model.safetensors')).equals(model()));
    assert.ok(hub.requests.filter((r) => r.url.includes('/tree/')).length >= 4);
  });
});
