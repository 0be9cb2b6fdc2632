// Writing outputs so that a crash or Ctrl-C never leaves a half-written file or folder behind: write beside the
// target under a temporary name, then rename over it.
import { existsSync, promises as fsp } from 'node:fs';
import { basename, dirname, join } from 'node:path';

function tempName(path: string, tag: string): string {
  return join(dirname(path), `.${basename(path)}.${tag}-${process.pid}`);
}

/** Writes a file atomically (temporary file, then rename). */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = tempName(path, 'tmp');
  await fsp.writeFile(tmp, data);
  await fsp.rename(tmp, path);
}

/**
 * Fills a folder atomically: `fill` writes into a temporary folder beside `dir`, which then replaces `dir`
 * (the old one is moved aside first and removed after).
 */
export async function replaceDirAtomic(
  dir: string,
  fill: (tmp: string) => Promise<void>,
): Promise<void> {
  const tmp = tempName(dir, 'tmp');
  const old = tempName(dir, 'old');
  await fsp.rm(tmp, { recursive: true, force: true });
  await fsp.mkdir(tmp, { recursive: true });
  try {
    await fill(tmp);
  } catch (e) {
    await fsp.rm(tmp, { recursive: true, force: true });
    throw e;
  }
  const had = existsSync(dir);
  if (had) await fsp.rename(dir, old);
  await fsp.rename(tmp, dir);
  if (had) await fsp.rm(old, { recursive: true, force: true });
}

/** Removes temporary files and folders left in `dir` by an interrupted write. */
export async function removeTemporaries(dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  for (const e of await fsp.readdir(dir)) {
    if (/^\..+\.(tmp|old)-\d+$/.test(e))
      await fsp.rm(join(dir, e), { recursive: true, force: true });
  }
}
