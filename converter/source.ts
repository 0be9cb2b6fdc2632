// Where a conversion reads from: a local Hugging Face folder, or a hub repo id resolved to one.
import { existsSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { snapshotDownload } from '../src/hub/download.js';

/** A checkpoint folder on disk and, when it came from the hub, where from. */
export interface ResolvedSource {
  dir: string;
  repo?: string;
  revision?: string;
}

/** Downloads (or finds in the cache) a hub repo and returns its local snapshot folder. */
export type HubResolver = (
  repoId: string,
  opts: { revision?: string; onProgress?: (done: number, total: number) => void },
) => Promise<{ dir: string; revision?: string }>;

const REPO_ID = /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/;

/**
 * Resolves a hub repo id to a local snapshot folder with `snapshotDownload` (standard HF cache, resumable,
 * honours HF_ENDPOINT / HF_HOME / HF_TOKEN). Progress is reported as bytes over all files.
 */
export const defaultHubResolver: HubResolver = async (repoId, opts) => {
  const files = new Map<string, { loaded: number; total: number }>();
  const dir = await snapshotDownload(repoId, {
    revision: opts.revision,
    onProgress: opts.onProgress
      ? (p) => {
          files.set(p.file, { loaded: p.loaded, total: p.total });
          let done = 0;
          let total = 0;
          for (const f of files.values()) {
            done += f.loaded;
            total += f.total;
          }
          opts.onProgress?.(done, total);
        }
      : undefined,
  });
  // The snapshot folder is named after the commit the revision resolved to.
  return { dir, revision: basename(dir) };
};

/**
 * `src` is an existing folder (used as is) or a hub repo id `owner/name` (resolved with `hub`).
 */
export async function resolveSource(
  src: string,
  opts: {
    revision?: string;
    hub?: HubResolver;
    onProgress?: (done: number, total: number) => void;
  } = {},
): Promise<ResolvedSource> {
  if (existsSync(src)) {
    if (!statSync(src).isDirectory()) {
      throw new Error(`${src}: not a folder (expected a Hugging Face checkpoint folder)`);
    }
    return { dir: src };
  }
  if (!REPO_ID.test(src)) {
    throw new Error(`${src}: no such folder, and not a hub repo id of the form owner/name`);
  }
  const hub = opts.hub ?? defaultHubResolver;
  const { dir, revision } = await hub(src, {
    revision: opts.revision,
    onProgress: opts.onProgress,
  });
  return { dir, repo: src, revision: revision ?? opts.revision };
}
