import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { repoIdProblem, resolveModelSource, validateRepoId } from '../../src/hub/resolve.js';
import { fixture } from '../helpers/fixtures.js';

describe('hub resolveModelSource', () => {
  let root: string;
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'siglip2-resolve-'));
    mkdirSync(join(root, 'google', 'local-model'), { recursive: true });
    writeFileSync(join(root, 'weights.safetensors'), '');
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('takes an existing folder, absolute, relative to cwd, or as a file:// URL', async () => {
    const dir = fixture('siglip_tiny');
    assert.deepEqual(await resolveModelSource(dir), { kind: 'folder', path: dir });
    assert.deepEqual(await resolveModelSource(pathToFileURL(dir).href), {
      kind: 'folder',
      path: dir,
    });
    // org/name that exists on disk is a folder, not a hub id.
    assert.deepEqual(await resolveModelSource('google/local-model', { cwd: root }), {
      kind: 'folder',
      path: join(root, 'google', 'local-model'),
    });
  });

  it('takes http(s) URLs', async () => {
    assert.deepEqual(await resolveModelSource('https://example.org/models/siglip2/'), {
      kind: 'url',
      url: 'https://example.org/models/siglip2/',
    });
    assert.equal((await resolveModelSource('HTTP://127.0.0.1:8080/m')).kind, 'url');
    await assert.rejects(resolveModelSource('https://'), /looks like a URL but cannot be parsed/);
  });

  it('takes hub ids org/name, with an optional @revision', async () => {
    assert.deepEqual(await resolveModelSource('google/siglip2-base-patch16-224', { cwd: root }), {
      kind: 'hub',
      repoId: 'google/siglip2-base-patch16-224',
    });
    assert.deepEqual(
      await resolveModelSource('google/siglip2-so400m-patch16-naflex@v1.0', { cwd: root }),
      {
        kind: 'hub',
        repoId: 'google/siglip2-so400m-patch16-naflex',
        revision: 'v1.0',
      },
    );
  });

  it('rejects what is neither, saying what was expected', async () => {
    await assert.rejects(resolveModelSource('', { cwd: root }), /model source is empty/);
    await assert.rejects(
      resolveModelSource('./missing-folder', { cwd: root }),
      new RegExp(`model folder ${join(root, 'missing-folder')} does not exist`),
    );
    await assert.rejects(
      resolveModelSource('weights.safetensors', { cwd: root }),
      /is a file: give the folder that holds config.json/,
    );
    await assert.rejects(
      resolveModelSource('siglip2', { cwd: root }),
      /not an existing folder .*not an http\(s\) URL, and not a hub repo id: a hub model id has the form org\/name/,
    );
    await assert.rejects(
      resolveModelSource('google/x@', { cwd: root }),
      /empty revision after "@"/,
    );
  });

  it('validates hub ids by the hub rules', () => {
    for (const ok of ['google/siglip2-base-patch16-224', 'a/b', 'Org_1/name.v2', 'x/y_']) {
      assert.equal(repoIdProblem(ok), null, ok);
    }
    for (const bad of [
      'google',
      'a/b/c',
      'google/-x',
      'google/x-',
      'google/a--b',
      'google/a..b',
      'g oogle/x',
      '/x',
      'x/',
    ]) {
      assert.notEqual(repoIdProblem(bad), null, bad);
    }
    assert.equal(repoIdProblem(`a/${'n'.repeat(96)}`), null);
    assert.notEqual(repoIdProblem(`a/${'n'.repeat(97)}`), null);
    assert.throws(
      () => validateRepoId('google/a--b'),
      /invalid Hugging Face repo id: "a--b" in "google\/a--b" must not contain/,
    );
  });
});
