/** Spawning the CLI with its shard writes slowed down, so a conversion can be killed between shards. */
import { join } from 'node:path';
import { REPO_ROOT } from './fixtures.js';

/** The built CLI entry point. */
export const CLI = join(REPO_ROOT, 'dist/src/cli/main.js');

/** Preloaded into the CLI (`--import`): every shard file opens 300 ms late. */
export const SLOW_WRITER =
  'data:text/javascript,' +
  encodeURIComponent(
    "import fs from 'node:fs'; const open = fs.promises.open;" +
      'fs.promises.open = async (p, ...a) => { if (String(p).endsWith(".bin")) ' +
      'await new Promise((r) => setTimeout(r, 300)); return open.call(fs.promises, p, ...a); };',
  );
