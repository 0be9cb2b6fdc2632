/**
 * Verified loading in the browser: loadSiglip in headless Chromium checks each file with Web Crypto as it is
 * fetched, and a shard with one flipped byte fails naming the file and both digests. Needs `npm run build:web`.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { chromiumUnavailable, launchChromium } from '../../src/browser/chromium.js';
import { startStaticServer, type StaticServer } from '../../src/browser/server.js';
import { skipUnavailable } from '../helpers/require_backend.js';
import { REPO_ROOT } from '../helpers/fixtures.js';
import { convertTinyModel, type TinyModel } from './tiny_model.js';

const WEB = join(REPO_ROOT, 'dist', 'web');

describe('browser: verified loading with Web Crypto (headless Chromium)', function () {
  this.timeout(300000);
  let tiny: TinyModel;
  let server: StaticServer;
  let browser: Browser;
  let expected: string;
  let actual: string;
  const shard = 'text/group1-shard1of1.bin';

  before(async function () {
    const why =
      (await chromiumUnavailable()) ??
      (existsSync(join(WEB, 'siglip2.js')) ? undefined : 'dist/web not built (npm run build:web)');
    if (why !== undefined) skipUnavailable(this, 'chromium-wasm', why);
    tiny = await convertTinyModel();
    const corrupt = join(tiny.dir, '..', 'corrupt');
    cpSync(tiny.dir, corrupt, { recursive: true });
    const bytes = readFileSync(join(corrupt, shard));
    bytes[1000] ^= 0x80;
    writeFileSync(join(corrupt, shard), bytes);
    const manifest = JSON.parse(readFileSync(join(corrupt, 'siglip.json'), 'utf8')) as {
      digests: Record<string, { sha256: string }>;
    };
    expected = manifest.digests[shard].sha256;
    actual = createHash('sha256').update(bytes).digest('hex');
    server = await startStaticServer({
      mounts: { '/': WEB, '/model/': tiny.dir, '/corrupt/': corrupt },
    });
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await server?.close();
    tiny?.cleanup();
  });

  it('verifies every file of a good model, and names the file and digests of a corrupt shard', async () => {
    const page = await browser.newPage();
    await page.goto(`${server.origin}/demo/?autoload=0`);
    const result = await page.evaluate(async (origin) => {
      const lib = (await import(`${origin}/siglip2.js`)) as typeof import('../../src/web.js');
      await lib.tf.setBackend('cpu');
      const good = await lib.loadSiglip(`${origin}/model/`);
      const verification = good.verification;
      good.dispose();
      let error = '';
      let name = '';
      try {
        (await lib.loadSiglip(`${origin}/corrupt/`, { towers: 'text' })).dispose();
      } catch (e) {
        error = (e as Error).message;
        name = (e as Error).name;
      }
      const skipped = await lib.loadSiglip(`${origin}/corrupt/`, { towers: 'text', verify: false });
      const skippedAs = skipped.verification;
      skipped.dispose();
      return { verification, error, name, skippedAs, secure: window.isSecureContext };
    }, server.origin);
    await page.close();
    assert.ok(result.secure, 'the test page is not a secure context (Web Crypto needs one)');
    assert.equal(result.verification, 'verified');
    assert.equal(result.name, 'IntegrityError');
    assert.ok(result.error.includes(`/corrupt/${shard}: SHA-256 mismatch`), result.error);
    assert.ok(result.error.includes(expected) && result.error.includes(actual), result.error);
    assert.equal(result.skippedAs, 'skipped');
  });
});
