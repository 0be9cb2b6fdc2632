/**
 * One file from the hub into the cache: resumable transfer (HTTP Range) into `<blob>.incomplete`, retries with
 * backoff, the hub's headers checked against its listing, size and hash verified, then the snapshot link.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, promises as fsp } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { failureOf, HubDownloadError, httpError } from './errors.js';
import type { RepoFile } from './listing.js';
import type { DownloadProgress } from './download.js';

/** What every transfer of one snapshot shares. */
export interface TransferContext {
  repoId: string;
  revision: string;
  endpoint: string;
  token?: string;
  fetchFn: typeof fetch;
  storage: string;
  commit: string;
  retries: number;
  retryDelayMs: number;
  onProgress: (p: DownloadProgress) => void;
  /** Blob downloads in flight, so two repo files with the same content share one transfer. */
  inflight: Map<string, Promise<void>>;
}

async function fileSize(path: string): Promise<number | null> {
  try {
    return (await fsp.stat(path)).size;
  } catch {
    return null;
  }
}

/** Points `pointer` at `blob` with a relative symlink, or copies the blob where symlinks are not allowed. */
async function linkSnapshotFile(blob: string, pointer: string): Promise<void> {
  await fsp.mkdir(dirname(pointer), { recursive: true });
  await fsp.rm(pointer, { force: true });
  try {
    await fsp.symlink(relative(dirname(pointer), blob), pointer);
  } catch {
    await fsp.copyFile(blob, pointer);
  }
}

async function hashFile(path: string, hashes: Hash[]): Promise<void> {
  for await (const chunk of createReadStream(path)) {
    for (const h of hashes) h.update(chunk as Buffer);
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

class RetryableError extends Error {}

const unquote = (etag: string) => etag.replace(/^W\//, '').replace(/^"|"$/g, '');

/**
 * The hub's own headers must agree with its listing: X-Repo-Commit with the commit, and for LFS files
 * X-Linked-Etag (the sha256) and X-Linked-Size with the LFS oid and size.
 */
function checkHubHeaders(ctx: TransferContext, file: RepoFile, headers: Headers): void {
  const commit = headers.get('x-repo-commit');
  const linkedEtag = headers.get('x-linked-etag');
  const linkedSize = headers.get('x-linked-size');
  const problems: string[] = [];
  if (commit !== null && commit !== ctx.commit) {
    problems.push(`X-Repo-Commit ${commit} is not the commit ${ctx.commit}`);
  }
  if (file.sha256 && linkedEtag !== null && unquote(linkedEtag) !== file.sha256) {
    problems.push(`X-Linked-Etag ${linkedEtag} is not the listed sha256 ${file.sha256}`);
  }
  if (file.sha256 && linkedSize !== null && Number(linkedSize) !== file.size) {
    problems.push(`X-Linked-Size ${linkedSize} is not the listed size ${file.size}`);
  }
  if (problems.length > 0) {
    throw new HubDownloadError(
      `${ctx.repoId}: the hub's headers for ${file.path} disagree with its file listing: ${problems.join('; ')}`,
    );
  }
}

/** GETs `url` from byte `start`, following redirects by hand so the token only goes to the endpoint. */
async function openTransfer(
  ctx: TransferContext,
  file: RepoFile,
  start: number,
): Promise<Response> {
  const origin = new URL(ctx.endpoint).origin;
  let url = `${ctx.endpoint}/${ctx.repoId}/resolve/${ctx.commit}/${file.path
    .split('/')
    .map(encodeURIComponent)
    .join('/')}`;
  for (let hop = 0; hop < 10; hop++) {
    const headers: Record<string, string> = { 'Accept-Encoding': 'identity' };
    if (start > 0) headers.Range = `bytes=${start}-`;
    if (ctx.token && new URL(url).origin === origin) headers.Authorization = `Bearer ${ctx.token}`;
    let res: Response;
    try {
      res = await ctx.fetchFn(url, { headers, redirect: 'manual' });
    } catch (e) {
      throw new RetryableError(`request to ${url} failed: ${(e as Error).message}`, { cause: e });
    }
    checkHubHeaders(ctx, file, res.headers);
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location) {
      await res.body?.cancel();
      url = new URL(location, url).href;
      continue;
    }
    if (res.ok || res.status === 416) return res;
    const failure = await failureOf(res);
    failure.url = url;
    if (res.status >= 500 || res.status === 429) {
      throw new RetryableError(`${url} answered HTTP ${res.status}`);
    }
    throw httpError(failure, ctx, file.path);
  }
  throw new HubDownloadError(`too many redirects downloading ${file.path} from ${ctx.repoId}`);
}

/** One attempt: appends to `incomplete` from its current size. Returns bytes gained. */
async function transferOnce(
  ctx: TransferContext,
  file: RepoFile,
  incomplete: string,
): Promise<number> {
  let start = (await fileSize(incomplete)) ?? 0;
  if (start > file.size) {
    await fsp.rm(incomplete, { force: true });
    start = 0;
  }
  if (start === file.size) return 0;
  ctx.onProgress({ file: file.path, loaded: start, total: file.size });
  const res = await openTransfer(ctx, file, start);
  if (res.status === 416) {
    await res.body?.cancel();
    throw new HubDownloadError(
      `${file.path}: server refused the resume range bytes=${start}- (HTTP 416); delete ${incomplete} and retry`,
      416,
    );
  }
  let offset = start;
  if (start > 0 && res.status === 200) offset = 0; // Range ignored: start over
  if (res.status === 206) {
    const m = /bytes (\d+)-\d+\/(\d+|\*)/.exec(res.headers.get('content-range') ?? '');
    if (!m || Number(m[1]) !== start) {
      await res.body?.cancel();
      throw new HubDownloadError(
        `${file.path}: server answered Content-Range ${JSON.stringify(res.headers.get('content-range'))} ` +
          `to a request for bytes=${start}-`,
      );
    }
  }
  const fh = await fsp.open(incomplete, offset === 0 ? 'w' : 'a');
  let written = offset;
  try {
    if (!res.body) throw new RetryableError(`${file.path}: empty response body`);
    const reader = res.body.getReader();
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (e) {
        throw new RetryableError(
          `transfer of ${file.path} broke at byte ${written} of ${file.size}: ${(e as Error).message}`,
          { cause: e },
        );
      }
      if (chunk.done) break;
      await fh.write(chunk.value);
      written += chunk.value.byteLength;
      if (written > file.size) {
        await reader.cancel();
        throw new HubDownloadError(
          `${file.path}: server sent more than the ${file.size} bytes the repo listing gives`,
        );
      }
      ctx.onProgress({ file: file.path, loaded: written, total: file.size });
    }
  } finally {
    await fh.close();
  }
  if (written < file.size) {
    throw new RetryableError(
      `transfer of ${file.path} ended early at byte ${written} of ${file.size}`,
    );
  }
  return written - start;
}

async function verifyBlob(file: RepoFile, path: string): Promise<void> {
  const size = await fileSize(path);
  if (size !== file.size) {
    throw new HubDownloadError(
      `size mismatch for ${file.path}: got ${size} bytes, the hub lists ${file.size}`,
    );
  }
  const sha256 = file.sha256 ? createHash('sha256') : null;
  const sha1 = file.gitSha1 ? createHash('sha1').update(`blob ${file.size}\0`) : null;
  const hashes = [sha256, sha1].filter((h): h is Hash => h !== null);
  if (hashes.length === 0) return;
  await hashFile(path, hashes);
  if (sha256 && file.sha256) {
    const got = sha256.digest('hex');
    if (got !== file.sha256) {
      throw new HubDownloadError(
        `sha256 mismatch for ${file.path}: got ${got}, the hub lists ${file.sha256}`,
      );
    }
  }
  if (sha1 && file.gitSha1) {
    const got = sha1.digest('hex');
    if (got !== file.gitSha1) {
      throw new HubDownloadError(
        `checksum mismatch for ${file.path}: git blob sha1 ${got}, the hub lists ${file.gitSha1}`,
      );
    }
  }
}

/** Puts `file` in the cache (blob, verified) and links it into the snapshot folder. */
export async function downloadOne(ctx: TransferContext, file: RepoFile): Promise<void> {
  const blob = join(ctx.storage, 'blobs', file.etag);
  const pointer = join(ctx.storage, 'snapshots', ctx.commit, ...file.path.split('/'));
  let pending = ctx.inflight.get(file.etag);
  if (!pending) {
    pending = fetchBlob(ctx, file, blob);
    ctx.inflight.set(file.etag, pending);
  }
  await pending;
  if ((await fileSize(pointer)) !== file.size) await linkSnapshotFile(blob, pointer);
}

/** Makes sure `blob` holds the verified content of `file`, downloading (and resuming) when it does not. */
async function fetchBlob(ctx: TransferContext, file: RepoFile, blob: string): Promise<void> {
  if ((await fileSize(blob)) === file.size) return;
  await fsp.mkdir(dirname(blob), { recursive: true });
  const incomplete = `${blob}.incomplete`;
  let failures = 0;
  let delay = ctx.retryDelayMs;
  for (;;) {
    const before = (await fileSize(incomplete)) ?? 0;
    try {
      await transferOnce(ctx, file, incomplete);
      break;
    } catch (e) {
      if (!(e instanceof RetryableError)) throw e;
      const have = (await fileSize(incomplete)) ?? 0;
      // A transfer that made progress starts a fresh series of attempts.
      if (have > before) {
        failures = 1;
        delay = ctx.retryDelayMs;
      } else failures++;
      if (failures > ctx.retries) {
        throw new HubDownloadError(
          `download of ${file.path} from ${ctx.repoId} failed after ${failures} attempts ` +
            `(${have} of ${file.size} bytes kept in ${incomplete}; run again to resume): ${e.message}`,
          undefined,
          undefined,
          { cause: e },
        );
      }
      await sleep(delay);
      delay = Math.min(delay * 2, 10_000);
    }
  }
  try {
    await verifyBlob(file, incomplete);
  } catch (e) {
    await fsp.rm(incomplete, { force: true });
    if (e instanceof HubDownloadError) {
      e.message += ` (the partial file was removed: run again to download ${file.path} afresh)`;
    }
    throw e;
  }
  await fsp.rename(incomplete, blob);
  ctx.onProgress({ file: file.path, loaded: file.size, total: file.size });
}
