/** The repo's file listing: entries as the cache names them, the files a SigLIP checkpoint needs, patterns. */
import { promises as fsp } from 'node:fs';
import { HubDownloadError } from './errors.js';

/** Non-weight files a SigLIP / SigLIP 2 checkpoint folder needs (each fetched if the repo has it). */
export const SIGLIP_DEFAULT_FILES: readonly string[] = [
  'config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'preprocessor_config.json',
  'spiece.model',
];
export const WEIGHTS_FILE = 'model.safetensors';
export const WEIGHTS_INDEX_FILE = 'model.safetensors.index.json';

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

/** One file of the repo at the commit. */
export interface RepoFile {
  path: string;
  size: number;
  /** Blob name in the cache: the LFS sha256 for LFS files, the git blob sha1 otherwise. */
  etag: string;
  sha256?: string;
  gitSha1?: string;
}

/** A listing entry of @huggingface/hub as a RepoFile. */
export function toRepoFile(entry: {
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

/** A relative path with no `..`, `.`, empty or absolute parts. */
export function relPathOk(path: string): boolean {
  const parts = path.split('/');
  return (
    !path.startsWith('/') &&
    !path.includes('\\') &&
    parts.every((p) => p !== '' && p !== '..' && p !== '.')
  );
}

/** The shard files a `model.safetensors.index.json` names. */
export async function shardsOf(indexPath: string, repoId: string): Promise<string[]> {
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
