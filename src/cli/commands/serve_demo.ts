import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { startStaticServer } from '../../browser/server.js';
import { webBuildDir } from '../../browser/web_build.js';

export function registerServeDemo(program: Command): void {
  program
    .command('serve-demo')
    .description('serve the browser demo and a converted model from 127.0.0.1 (Ctrl-C stops it)')
    .requiredOption('--model <dir>', 'converted model folder (siglip.json), served at /model/')
    .option('--port <n>', 'port (default 8080; 0: any free port)', '8080')
    .option('--backend <name>', 'backend the page starts with: auto, webgpu, wasm or cpu', 'auto')
    .action(async (opts: { model: string; port: string; backend: string }) => {
      const web = webBuildDir();
      if (!existsSync(join(web, 'demo', 'index.html'))) {
        throw new Error(`${web}/demo/index.html is missing: run npm run build:web`);
      }
      if (!existsSync(join(opts.model, 'siglip.json'))) {
        throw new Error(
          `${opts.model}: no siglip.json (convert a checkpoint with siglip2 convert first)`,
        );
      }
      if (!['auto', 'webgpu', 'wasm', 'cpu'].includes(opts.backend)) {
        throw new Error(`--backend ${opts.backend}: the browser has auto, webgpu, wasm and cpu`);
      }
      const server = await startStaticServer({
        mounts: { '/': web, '/model/': resolve(opts.model) },
        redirects: { '/': `/demo/?backend=${opts.backend}` },
        port: Number(opts.port),
      });
      console.log(`demo: ${server.origin}/ (model ${resolve(opts.model)} at /model/)`);
      await new Promise<void>((done) => {
        process.once('SIGINT', () => void server.close().then(done));
        process.once('SIGTERM', () => void server.close().then(done));
      });
    });
}
