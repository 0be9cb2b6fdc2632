/** The standard Hugging Face hub cache layout: `<cache>/models--org--name/{blobs,refs,snapshots/<commit>}`. */
import { promises as fsp } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { getRepoFolderName } from '@huggingface/hub';

export const COMMIT_SHA = /^[0-9a-f]{40}$/;

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

async function exists(path: string): Promise<boolean> {
  try {
    await fsp.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** The cached snapshot folder of `revision` (a commit, or a ref recorded in refs/), or null. */
export async function offlineSnapshot(storage: string, revision: string): Promise<string | null> {
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
