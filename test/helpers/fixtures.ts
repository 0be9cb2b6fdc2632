import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (tests run from dist/test/...). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** `../shared/fixtures` beside the checkout, or `$SIGLIP2_FIXTURES`. */
export const FIXTURES = process.env.SIGLIP2_FIXTURES ?? resolve(REPO_ROOT, '../shared/fixtures');

export function fixture(...parts: string[]): string {
  const path = join(FIXTURES, ...parts);
  if (!existsSync(path)) {
    throw new Error(
      `fixture ${path} not found: set SIGLIP2_FIXTURES to the shared/fixtures folder`,
    );
  }
  return path;
}
