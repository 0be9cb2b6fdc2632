import { createHash, type Hash } from 'node:crypto';
import { createReadStream, promises as fsp } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { HubApiError, getRepoFolderName, listFiles, modelInfo } from '@huggingface/hub';
import { createProgressRenderer } from './progress.js';
import { validateRepoId } from './resolve.js';

/** One progress report for one file: `loaded` of `total` bytes are in the cache. */
export interface DownloadProgress {
  file: string;
  loaded: number;
  total: number;
}

export interface SnapshotDownloadOptions {
  /** Branch, tag or commit sha (default `main`). */
  revision?: string;
  /** Hub cache folder (default `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`). */
  cacheDir?: string;
  /** Hub URL (default `$HF_ENDPOINT`, else https://huggingface.co). */
  endpoint?: string;
  /** Access token (default `$HF_TOKEN`); sent as `Authorization: Bearer` to the endpoint only. */
  token?: string;
  /**
   * Glob patterns (`*` matches across `/`, as Python's fnmatch) of the repo files to fetch. Default: the files a
   * SigLIP checkpoint needs ({@link SIGLIP_DEFAULT_FILES}), `model.safetensors` or else
   * `model.safetensors.index.json` and every shard it names.
   */
  allowPatterns?: string[];
  /** Called as bytes arrive. Default: a cli-progress multibar on stderr when it is a TTY, silent otherwise. */
  onProgress?: (p: DownloadProgress) => void;
  /** fetch implementation (default: global fetch). */
  fetch?: typeof fetch;
  /** Attempts per file after a network failure, each resuming where the last stopped (default 5). */
  retries?: number;
  /** First wait between attempts in ms, doubled each time up to 10 s (default 1000). */
  retryDelayMs?: number;
  /** Files transferred at once (default 4). */
  concurrency?: number;
  /** Use only the cache, no network (default: `$HF_HUB_OFFLINE` is 1/true/yes/on). */
  offline?: boolean;
}

/** Non-weight files a SigLIP / SigLIP 2 checkpoint folder needs (each fetched if the repo has it). */
export const SIGLIP_DEFAULT_FILES: readonly string[] = [
  'config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'preprocessor_config.json',
  'spiece.model',
];
const WEIGHTS_FILE = 'model.safetensors';
const WEIGHTS_INDEX_FILE = 'model.safetensors.index.json';

/** A download failure with the HTTP status and hub error code (X-Error-Code) when there was one. */
export class HubDownloadError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    readonly code?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'HubDownloadError';
  }
}

/** The hub cache folder the environment selects: `$HF_HUB_CACHE`, `$HF_HOME/hub`, or the default. */
export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  if (env.HUGGINGFACE_HUB_CACHE) return env.HUGGINGFACE_HUB_CACHE;
  if (env.HF_HOME) return join(env.HF_HOME, 'hub');
  return join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'huggingface', 'hub');
}

/** `<cacheDir>/models--org--name`. */
export function repoCacheFolder(cacheDir: string, repoId: string): string {
  return join(cacheDir, getRepoFolderName({ type: 'model', name: repoId }));
}

function truthyEnv(value: string | undefined): boolean {
  return value !== undefined && ['1', 'true', 'yes', 'on'].includes(value.trim().toLowerCase());
}

const COMMIT_SHA = /^[0-9a-f]{40}$/;

/** Python fnmatch semantics: `*` any run (including `/`), `?` one character, `[...]` a class. */
export function globToRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) re += '\\[';
      else {
        let body = pattern.slice(i + 1, end).replace(/\\/g, '\\\\');
        if (body.startsWith('!')) body = '^' + body.slice(1);
        re += `[${body}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\\]]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 's');
}

interface RepoFile {
  path: string;
  size: number;
  /** Blob name in the cache: the LFS sha256 for LFS files, the git blob sha1 otherwise. */
  etag: string;
  sha256?: string;
  gitSha1?: string;
}

interface HttpFailure {
  url: string;
  status: number;
  code?: string;
  message?: string;
}

interface Context {
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

function httpError(
  failure: HttpFailure,
  ctx: { repoId: string; revision: string; endpoint: string; token?: string },
  file?: string,
): HubDownloadError {
  const { status, code } = failure;
  const page = `${ctx.endpoint}/${ctx.repoId}`;
  const detail = failure.message ? ` (${failure.message})` : '';
  const where = `${failure.url} answered HTTP ${status}${code ? ` ${code}` : ''}${detail}`;
  if (code === 'RepoNotFound') {
    return new HubDownloadError(
      `repository ${ctx.repoId} not found on ${ctx.endpoint}: check the id (org/name); if it is private ` +
        `or gated, set HF_TOKEN to an access token that can read it. ${where}`,
      status,
      code,
    );
  }
  if (code === 'RevisionNotFound') {
    return new HubDownloadError(
      `revision ${JSON.stringify(ctx.revision)} not found in ${ctx.repoId}: check the branch, tag or ` +
        `commit sha. ${where}`,
      status,
      code,
    );
  }
  if (code === 'EntryNotFound' || (status === 404 && file)) {
    return new HubDownloadError(
      `file ${JSON.stringify(file ?? '?')} not found in ${ctx.repoId} at revision ${ctx.revision}. ${where}`,
      status,
      code,
    );
  }
  if (status === 401 || status === 403) {
    const tokenNote = ctx.token
      ? status === 401
        ? 'the token given (HF_TOKEN or the token option) was rejected: check that it is valid'
        : 'the token given (HF_TOKEN or the token option) has no access yet'
      : 'no token was sent: set HF_TOKEN to a Hugging Face access token (https://huggingface.co/settings/tokens)';
    return new HubDownloadError(
      `${ctx.repoId} is gated or private (HTTP ${status}): ${tokenNote}, and accept the licence on the model ` +
        `page ${page} with the same account. ${where}`,
      status,
      code,
    );
  }
  if (status === 404) {
    return new HubDownloadError(
      `repository ${ctx.repoId} or revision ${JSON.stringify(ctx.revision)} not found on ${ctx.endpoint}. ${where}`,
      status,
      code,
    );
  }
  return new HubDownloadError(`hub request failed: ${where}`, status, code);
}

async function failureOf(res: Response): Promise<HttpFailure> {
  let message = res.headers.get('x-error-message') ?? undefined;
  if (!message) {
    try {
      const text = (await res.text()).slice(0, 300);
      try {
        const json = JSON.parse(text) as { error?: unknown };
        message = typeof json.error === 'string' ? json.error : text;
      } catch {
        message = text || undefined;
      }
    } catch {
      message = undefined;
    }
  }
  return {
    url: res.url,
    status: res.status,
    code: res.headers.get('x-error-code') ?? undefined,
    message,
  };
}

/**
 * fetch for the @huggingface/hub calls: adds our token (the library refuses tokens not starting with `hf_`, so
 * it is not given one) for the endpoint's origin only, and keeps the hub's X-Error-Code / X-Error-Message of a
 * failed response, which HubApiError drops.
 */
function apiFetch(
  base: typeof fetch,
  endpoint: string,
  token: string | undefined,
  failures: HttpFailure[],
): typeof fetch {
  const origin = new URL(endpoint).origin;
  const wrapped = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const headers = new Headers(init?.headers);
    if (token && new URL(url).origin === origin) headers.set('Authorization', `Bearer ${token}`);
    const res = await base(input, { ...init, headers });
    if (!res.ok) {
      failures.push({
        url: res.url || url,
        status: res.status,
        code: res.headers.get('x-error-code') ?? undefined,
        message: res.headers.get('x-error-message') ?? undefined,
      });
    }
    return res;
  };
  return wrapped as typeof fetch;
}

async function exists(path: string): Promise<boolean> {
  try {
    await fsp.stat(path);
    return true;
  } catch {
    return false;
  }
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

async function offlineSnapshot(storage: string, revision: string): Promise<string | null> {
  let commit = COMMIT_SHA.test(revision) ? revision : null;
  if (!commit) {
    try {
      commit = (await fsp.readFile(join(storage, 'refs', revision), 'utf8')).trim();
    } catch {
      return null;
    }
  }
  const folder = join(storage, 'snapshots', commit);
  return (await exists(folder)) ? folder : null;
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
function checkHubHeaders(ctx: Context, file: RepoFile, headers: Headers): void {
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
async function openTransfer(ctx: Context, file: RepoFile, start: number): Promise<Response> {
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
async function transferOnce(ctx: Context, file: RepoFile, incomplete: string): Promise<number> {
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

async function downloadOne(ctx: Context, file: RepoFile): Promise<void> {
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
async function fetchBlob(ctx: Context, file: RepoFile, blob: string): Promise<void> {
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

async function runPool<T>(
  items: T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failed: unknown = null;
  const worker = async () => {
    while (failed === null && next < items.length) {
      const item = items[next++];
      try {
        await fn(item);
      } catch (e) {
        failed ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failed !== null) throw failed;
}

function isNetworkError(e: unknown): boolean {
  return e instanceof TypeError && !(e instanceof HubApiError);
}

function toRepoFile(entry: {
  path: string;
  size: number;
  oid?: string;
  lfs?: { oid: string; size: number };
}): RepoFile {
  if (entry.lfs) {
    return { path: entry.path, size: entry.lfs.size, etag: entry.lfs.oid, sha256: entry.lfs.oid };
  }
  if (!entry.oid) {
    throw new HubDownloadError(`the hub listing gives no oid for ${entry.path}`);
  }
  return { path: entry.path, size: entry.size, etag: entry.oid, gitSha1: entry.oid };
}

function relPathOk(path: string): boolean {
  const parts = path.split('/');
  return (
    !path.startsWith('/') &&
    !path.includes('\\') &&
    parts.every((p) => p !== '' && p !== '..' && p !== '.')
  );
}

/**
 * Downloads the files of a Hugging Face model repo into the standard hub cache
 * (`<cache>/models--org--name/{blobs,refs,snapshots/<commit>}`) and returns the snapshot folder. Files already in
 * the cache are not fetched again, interrupted transfers resume with an HTTP Range request, and every file is
 * checked against the size and hash the hub lists.
 */
export async function snapshotDownload(
  repoId: string,
  opts: SnapshotDownloadOptions = {},
): Promise<string> {
  validateRepoId(repoId);
  const revision = opts.revision ?? 'main';
  const endpoint = (opts.endpoint ?? process.env.HF_ENDPOINT ?? 'https://huggingface.co').replace(
    /\/+$/,
    '',
  );
  try {
    new URL(endpoint);
  } catch {
    throw new Error(
      `hub endpoint ${JSON.stringify(endpoint)} (HF_ENDPOINT or endpoint option) is not a URL`,
    );
  }
  const token =
    opts.token ?? (process.env.HF_TOKEN || process.env.HUGGING_FACE_HUB_TOKEN || undefined);
  const cacheDir = opts.cacheDir ?? hubCacheDir();
  const storage = repoCacheFolder(cacheDir, repoId);
  const offline = opts.offline ?? truthyEnv(process.env.HF_HUB_OFFLINE);
  if (offline) {
    const folder = await offlineSnapshot(storage, revision);
    if (!folder) {
      throw new HubDownloadError(
        `offline mode (HF_HUB_OFFLINE): no cached snapshot of ${repoId} at revision ${revision} in ${cacheDir}`,
      );
    }
    return folder;
  }

  const baseFetch = opts.fetch ?? fetch;
  const failures: HttpFailure[] = [];
  const wrapped = apiFetch(baseFetch, endpoint, token, failures);
  const errCtx = { repoId, revision, endpoint, token };
  const apiCall = async <T>(call: () => Promise<T>): Promise<T> => {
    try {
      return await call();
    } catch (e) {
      if (e instanceof HubApiError) {
        const f = failures.at(-1) ?? { url: e.url, status: e.statusCode };
        throw httpError({ ...f, message: f.message ?? e.message.split('. URL:')[0] }, errCtx);
      }
      throw e;
    }
  };

  let commit: string;
  try {
    const info = await apiCall(() =>
      modelInfo({
        name: repoId,
        revision,
        hubUrl: endpoint,
        fetch: wrapped,
        additionalFields: ['sha'],
      }),
    );
    if (typeof info.sha !== 'string' || !COMMIT_SHA.test(info.sha)) {
      throw new HubDownloadError(`${endpoint} gave no commit sha for ${repoId} at ${revision}`);
    }
    commit = info.sha;
  } catch (e) {
    if (isNetworkError(e)) {
      const folder = await offlineSnapshot(storage, revision);
      if (folder) {
        process.emitWarning(
          `cannot reach ${endpoint} (${(e as Error).message}); using the cached snapshot ${folder}`,
        );
        return folder;
      }
      throw new HubDownloadError(
        `cannot reach the hub at ${endpoint} for ${repoId} (${(e as Error).message}), and there is no cached ` +
          `snapshot for revision ${revision}`,
        undefined,
        undefined,
        { cause: e },
      );
    }
    throw e;
  }

  const listing = new Map<string, RepoFile>();
  await apiCall(async () => {
    for await (const entry of listFiles({
      repo: { type: 'model', name: repoId },
      recursive: true,
      revision: commit,
      hubUrl: endpoint,
      fetch: wrapped,
    })) {
      if (entry.type !== 'file') continue;
      if (!relPathOk(entry.path)) {
        throw new HubDownloadError(
          `the hub listing has an unsafe file path ${JSON.stringify(entry.path)}`,
        );
      }
      listing.set(entry.path, toRepoFile(entry));
    }
  });

  let selected: RepoFile[];
  const useDefaults = !opts.allowPatterns;
  if (opts.allowPatterns) {
    const res = opts.allowPatterns.map(globToRegExp);
    selected = [...listing.values()].filter((f) => res.some((re) => re.test(f.path)));
    if (selected.length === 0) {
      throw new HubDownloadError(
        `no file of ${repoId} at ${revision} matches ${JSON.stringify(opts.allowPatterns)}; the repo has: ` +
          [...listing.keys()].join(', '),
      );
    }
  } else {
    selected = SIGLIP_DEFAULT_FILES.flatMap((p) => listing.get(p) ?? []);
    const weights = listing.get(WEIGHTS_FILE) ?? listing.get(WEIGHTS_INDEX_FILE);
    if (!weights) {
      throw new HubDownloadError(
        `${repoId} at ${revision} has neither ${WEIGHTS_FILE} nor ${WEIGHTS_INDEX_FILE}; the repo has: ` +
          [...listing.keys()].join(', '),
      );
    }
    if (!listing.has('config.json')) {
      throw new HubDownloadError(`${repoId} at ${revision} has no config.json`);
    }
    selected.push(weights);
  }

  if (revision !== commit) {
    const ref = join(storage, 'refs', ...revision.split('/'));
    await fsp.mkdir(dirname(ref), { recursive: true });
    await fsp.writeFile(ref, commit);
  }
  const snapshot = join(storage, 'snapshots', commit);
  await fsp.mkdir(snapshot, { recursive: true });

  let renderer: ReturnType<typeof createProgressRenderer> | null = null;
  const onProgress =
    opts.onProgress ?? (renderer = createProgressRenderer({ stream: process.stderr })).onProgress;
  const ctx: Context = {
    repoId,
    revision,
    endpoint,
    token,
    fetchFn: baseFetch,
    storage,
    commit,
    retries: opts.retries ?? 5,
    retryDelayMs: opts.retryDelayMs ?? 1000,
    onProgress,
    inflight: new Map(),
  };
  const concurrency = opts.concurrency ?? 4;
  try {
    await runPool(selected, concurrency, (f) => downloadOne(ctx, f));
    const index = selected.find((f) => f.path === WEIGHTS_INDEX_FILE);
    if (useDefaults && index) {
      const shards = await shardsOf(join(snapshot, WEIGHTS_INDEX_FILE), repoId);
      const missing = shards.filter((s) => !listing.has(s));
      if (missing.length > 0) {
        throw new HubDownloadError(
          `${WEIGHTS_INDEX_FILE} of ${repoId} names shards the repo does not have: ${missing.join(', ')}`,
        );
      }
      await runPool(
        shards.map((s) => listing.get(s) as RepoFile),
        concurrency,
        (f) => downloadOne(ctx, f),
      );
    }
  } finally {
    renderer?.stop();
  }
  return snapshot;
}

async function shardsOf(indexPath: string, repoId: string): Promise<string[]> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await fsp.readFile(indexPath, 'utf8'));
  } catch (e) {
    throw new HubDownloadError(
      `${indexPath} of ${repoId}: not valid JSON (${(e as Error).message})`,
    );
  }
  const map = (parsed as { weight_map?: unknown }).weight_map;
  if (typeof map !== 'object' || map === null) {
    throw new HubDownloadError(`${indexPath} of ${repoId}: no weight_map object`);
  }
  const shards = new Set<string>();
  for (const [tensor, shard] of Object.entries(map)) {
    if (typeof shard !== 'string' || !relPathOk(shard)) {
      throw new HubDownloadError(
        `${indexPath} of ${repoId}: weight_map[${JSON.stringify(tensor)}] is not a file name`,
      );
    }
    shards.add(shard);
  }
  return [...shards];
}
