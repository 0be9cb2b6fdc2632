import { promises as fsp } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where a model comes from: a local folder, an http(s) URL, or a Hugging Face hub repository. */
export interface ModelSource {
  kind: 'folder' | 'hub' | 'url';
  /** Absolute folder path (kind 'folder'). */
  path?: string;
  /** `org/name` (kind 'hub'). */
  repoId?: string;
  /** Revision given as `org/name@revision` (kind 'hub'), if any. */
  revision?: string;
  /** The URL (kind 'url'). */
  url?: string;
}

export interface ResolveModelSourceOptions {
  /** Folder that relative paths are resolved against (default: process.cwd()). */
  cwd?: string;
}

const NAME_PART = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_])?$/;

/**
 * Why `repoId` is not a valid hub model id of the form `org/name`, or null when it is valid. The rules follow the
 * hub's: two parts of 1 to 96 characters from `[A-Za-z0-9._-]`, not starting with `.` or `-`, not ending with
 * `.` or `-`, without `--` or `..`.
 */
export function repoIdProblem(repoId: string): string | null {
  const parts = repoId.split('/');
  if (parts.length !== 2) {
    return `a hub model id has the form org/name (exactly one "/"), got ${JSON.stringify(repoId)}`;
  }
  for (const part of parts) {
    if (!NAME_PART.test(part)) {
      return (
        `${JSON.stringify(part)} in ${JSON.stringify(repoId)} is not a valid hub name: use 1-96 characters ` +
        `from A-Z a-z 0-9 . _ -, not starting or ending with . or -`
      );
    }
    if (part.includes('--') || part.includes('..')) {
      return `${JSON.stringify(part)} in ${JSON.stringify(repoId)} must not contain "--" or ".."`;
    }
  }
  return null;
}

/** Throws a clear error unless `repoId` is a valid `org/name` hub model id. */
export function validateRepoId(repoId: string): void {
  const problem = repoIdProblem(repoId);
  if (problem) throw new Error(`invalid Hugging Face repo id: ${problem}`);
}

async function statOrNull(path: string): Promise<import('node:fs').Stats | null> {
  try {
    return await fsp.stat(path);
  } catch {
    return null;
  }
}

function looksLikePath(spec: string): boolean {
  return (
    isAbsolute(spec) ||
    spec.startsWith('./') ||
    spec.startsWith('../') ||
    spec === '.' ||
    spec === '..' ||
    spec.startsWith('~') ||
    spec.includes('\\')
  );
}

/**
 * Decides what a model argument names:
 * - an existing local folder (relative to `cwd`; `~/` expands to the home folder; `file://` URLs are folders),
 * - an `http://` or `https://` URL,
 * - otherwise a Hugging Face hub repo id `org/name`, optionally `org/name@revision`.
 * Anything else (a missing path, a file, a malformed id) is an error that says which of the three was expected.
 */
export async function resolveModelSource(
  spec: string,
  opts: ResolveModelSourceOptions = {},
): Promise<ModelSource> {
  const raw = spec.trim();
  if (raw === '')
    throw new Error('model source is empty: give a folder, an http(s) URL or org/name');
  const cwd = opts.cwd ?? process.cwd();

  if (/^https?:\/\//i.test(raw)) {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new Error(`model source ${JSON.stringify(raw)} looks like a URL but cannot be parsed`);
    }
    if (!url.hostname) throw new Error(`model source URL ${JSON.stringify(raw)} has no host`);
    return { kind: 'url', url: url.href };
  }

  let localPath: string;
  if (/^file:\/\//i.test(raw)) {
    localPath = fileURLToPath(raw);
  } else if (raw === '~' || raw.startsWith('~/')) {
    localPath = resolvePath(homedir(), raw.slice(2));
  } else {
    localPath = resolvePath(cwd, raw);
  }
  const st = await statOrNull(localPath);
  if (st?.isDirectory()) return { kind: 'folder', path: localPath };
  if (st) {
    throw new Error(
      `model source ${localPath} is a file: give the folder that holds config.json and the weights`,
    );
  }
  if (/^file:\/\//i.test(raw) || looksLikePath(raw)) {
    throw new Error(`model folder ${localPath} does not exist`);
  }

  const at = raw.lastIndexOf('@');
  const repoId = at >= 0 ? raw.slice(0, at) : raw;
  const revision = at >= 0 ? raw.slice(at + 1) : undefined;
  if (revision !== undefined && revision === '') {
    throw new Error(`model source ${JSON.stringify(raw)}: empty revision after "@"`);
  }
  const problem = repoIdProblem(repoId);
  if (problem) {
    throw new Error(
      `model source ${JSON.stringify(raw)} is not an existing folder (looked for ${localPath}), ` +
        `not an http(s) URL, and not a hub repo id: ${problem}`,
    );
  }
  return revision === undefined ? { kind: 'hub', repoId } : { kind: 'hub', repoId, revision };
}
