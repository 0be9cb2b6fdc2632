/**
 * snapshotDownload: a Hugging Face model repo into the standard hub cache. The parts: errors.ts (typed errors and
 * their messages), cache.ts (cache layout), listing.ts (what to fetch), transfer.ts (one file), pool.ts.
 */
import { promises as fsp } from 'node:fs';
import { dirname, join } from 'node:path';
import { HubApiError, listFiles, modelInfo } from '@huggingface/hub';
import { COMMIT_SHA, hubCacheDir, offlineSnapshot, repoCacheFolder } from './cache.js';
import {
  HubDownloadError,
  type HttpFailure,
  httpError,
  hubApiMessage,
  isNetworkError,
} from './errors.js';
import {
  globToRegExp,
  relPathOk,
  type RepoFile,
  shardsOf,
  SIGLIP_DEFAULT_FILES,
  toRepoFile,
  WEIGHTS_FILE,
  WEIGHTS_INDEX_FILE,
} from './listing.js';
import { runPool } from './pool.js';
import { createProgressRenderer } from './progress.js';
import { validateRepoId } from './resolve.js';
import { downloadOne, type TransferContext } from './transfer.js';

export { hubCacheDir, repoCacheFolder } from './cache.js';
export { HubDownloadError } from './errors.js';
export { globToRegExp, SIGLIP_DEFAULT_FILES } from './listing.js';

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

function truthyEnv(value: string | undefined): boolean {
  return value !== undefined && ['1', 'true', 'yes', 'on'].includes(value.trim().toLowerCase());
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
        throw httpError({ ...f, message: f.message ?? hubApiMessage(e) }, errCtx);
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
  const ctx: TransferContext = {
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
