#!/usr/bin/env node
// Browser build: dist/web/siglip2.js (the library, ESM) and dist/web/demo.js (the demo page's module), sharing
// chunks, plus the tfjs-backend-wasm .wasm files in dist/web/wasm/ (the demo passes wasmPaths './wasm/').
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
const out = 'dist/web';
rmSync(out, { recursive: true, force: true });
await build({
  entryPoints: { siglip2: 'src/web.ts', demo: 'web/demo/demo.ts' },
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  outdir: out,
  sourcemap: true,
  // Node-only code paths are behind dynamic imports that a browser never takes (cli-progress: the trainer's
  // terminal progress bar).
  external: [
    'node:*',
    'sharp',
    'webgpu',
    '@tensorflow/tfjs-node',
    '@tensorflow/tfjs-node-gpu',
    'cli-progress',
  ],
  logLevel: 'warning',
});
const wasmDir = join(
  dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')),
  'dist',
);
mkdirSync(join(out, 'wasm'), { recursive: true });
for (const f of readdirSync(wasmDir)) {
  if (f.endsWith('.wasm')) copyFileSync(join(wasmDir, f), join(out, 'wasm', f));
}
mkdirSync(join(out, 'demo'), { recursive: true });
for (const f of readdirSync('web/demo')) {
  if (!f.endsWith('.ts')) copyFileSync(join('web/demo', f), join(out, 'demo', f));
}
