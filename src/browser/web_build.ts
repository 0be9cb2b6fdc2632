/** Where this package's files are on disk (Node): its root, and the browser build that `npm run build:web` writes. */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The folder holding this package's package.json (this file is <root>/dist/src/browser/web_build.js). */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5 && !existsSync(join(dir, 'package.json')); i++) dir = dirname(dir);
  return dir;
}

/** dist/web of this package: siglip2.js, demo.js, demo/ and wasm/. */
export function webBuildDir(): string {
  return join(packageRoot(), 'dist', 'web');
}
