/**
 * `siglip2 serve-demo` serves the browser build cross-origin isolated (COOP/COEP), which wasm threads need, from
 * the same static server the browser tests use. Needs `npm run build:web` (pretest).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { get } from 'node:http';
import { join } from 'node:path';
import { REPO_ROOT, fixture } from '../helpers/fixtures.js';
import { convertTinyModel, type TinyModel } from '../browser/tiny_model.js';

const CLI = join(REPO_ROOT, 'dist/src/cli/main.js');

describe('siglip2 serve-demo', function () {
  this.timeout(120_000);
  let tiny: TinyModel;

  before(async () => {
    fixture('siglip_tiny');
    tiny = await convertTinyModel();
  });

  after(() => tiny?.cleanup());

  it('sends COOP/COEP with every file and redirects / to the demo with the backend asked for', async () => {
    const child = spawn(
      process.execPath,
      [CLI, 'serve-demo', '--model', tiny.dir, '--port', '0', '--backend', 'wasm'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    try {
      const origin = await new Promise<string>((ok, fail) => {
        let out = '';
        let err = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /demo: (http:\/\/127\.0\.0\.1:\d+)\//.exec(out);
          if (m) ok(m[1]);
        });
        child.stderr.on('data', (d: Buffer) => (err += d.toString()));
        child.on('exit', (code) => fail(new Error(`serve-demo exited ${code}: ${err}`)));
      });
      const root = await fetch(`${origin}/`, { redirect: 'manual' });
      assert.equal(root.status, 302);
      assert.equal(root.headers.get('location'), '/demo/?backend=wasm');
      for (const path of ['/demo/', '/demo.js', '/siglip2.js', '/model/siglip.json']) {
        const res = await fetch(`${origin}${path}`);
        assert.equal(res.status, 200, path);
        assert.equal(res.headers.get('cross-origin-opener-policy'), 'same-origin', path);
        assert.equal(res.headers.get('cross-origin-embedder-policy'), 'require-corp', path);
        await res.arrayBuffer();
      }
      const wasm = await fetch(`${origin}/wasm/tfjs-backend-wasm-threaded-simd.wasm`);
      assert.equal(wasm.status, 200);
      assert.equal(wasm.headers.get('content-type'), 'application/wasm');
      await wasm.arrayBuffer();
      // a path that leaves the served folders once decoded is refused
      const escape = await new Promise<number>((ok, fail) =>
        get(`${origin}/model/..%2f..%2fpackage.json`, (res) => {
          res.resume();
          ok(res.statusCode ?? 0);
        }).on('error', fail),
      );
      assert.equal(escape, 403);
    } finally {
      child.kill('SIGTERM');
    }
  });
});
