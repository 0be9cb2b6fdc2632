// Where a conversion reads from: a local Hugging Face folder, or a hub repo id resolved to one.
import { existsSync, statSync } from 'node:fs';

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
 * HUB CALL SITE (the only one): resolves a hub repo id to a local folder. The hub download client
 * (`src/hub/snapshotDownload`) lives on another branch; the lead wires it here at merge, e.g.
 * `return { dir: await snapshotDownload(repoId, opts) }`.
 */
export const defaultHubResolver: HubResolver = async (repoId) => {
  throw new Error(
    `${repoId}: downloading from the Hugging Face hub is not available in this build; ` +
      'pass a local checkpoint folder instead',
  );
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
