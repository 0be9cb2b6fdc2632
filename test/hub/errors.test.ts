/** The hub's errors are read from structured fields (status, X-Error-Code, the JSON body), never from message text. */
import assert from 'node:assert/strict';
import { HubApiError } from '@huggingface/hub';
import { HubDownloadError, httpError, hubApiMessage } from '../../src/hub/errors.js';

function apiError(data: Record<string, unknown> | undefined): HubApiError {
  const e = new HubApiError(
    'https://hub.example/api/models/a/b',
    404,
    'req-1',
    'ignored text. URL: x',
  );
  e.data = data as HubApiError['data'];
  return e;
}

describe('hub errors', () => {
  it("hubApiMessage reads the hub's JSON body kept by HubApiError", () => {
    assert.equal(
      hubApiMessage(apiError({ error: 'Repository not found' })),
      'Repository not found',
    );
    assert.equal(
      hubApiMessage(apiError({ error: 'invalid_grant', error_description: 'token expired' })),
      'invalid_grant: token expired',
    );
    assert.equal(hubApiMessage(apiError({ message: 'plain text body' })), 'plain text body');
    assert.equal(hubApiMessage(apiError({ error: 42 })), undefined);
    assert.equal(hubApiMessage(apiError(undefined)), undefined);
  });

  it('httpError says what to check, by X-Error-Code and status', () => {
    const ctx = { repoId: 'org/name', revision: 'main', endpoint: 'https://hub.example' };
    const notFound = httpError(
      { url: 'u', status: 404, code: 'RepoNotFound', message: 'Repository not found' },
      ctx,
    );
    assert.ok(notFound instanceof HubDownloadError);
    assert.equal(notFound.status, 404);
    assert.equal(notFound.code, 'RepoNotFound');
    assert.match(notFound.message, /repository org\/name not found on https:\/\/hub\.example/);
    assert.match(notFound.message, /\(Repository not found\)/);
    const gated = httpError({ url: 'u', status: 403 }, { ...ctx, token: 'hf_x' });
    assert.match(
      gated.message,
      /gated or private \(HTTP 403\): the token given .* has no access yet/,
    );
    const file = httpError({ url: 'u', status: 404 }, ctx, 'model.safetensors');
    assert.match(file.message, /file "model\.safetensors" not found in org\/name at revision main/);
  });
});
