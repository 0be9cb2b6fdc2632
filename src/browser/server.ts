/**
 * A small static file server for 127.0.0.1 (Node): URL prefixes mapped to folders, with the COOP/COEP headers
 * that make a page cross-origin isolated (SharedArrayBuffer, so wasm threads work in browsers).
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, resolve, sep } from 'node:path';

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.map': 'application/json',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.bin': 'application/octet-stream',
};

export interface StaticServerOptions {
  /** URL prefix (e.g. `/model/`) -> folder. The longest matching prefix wins. */
  mounts: Record<string, string>;
  /** Paths answered with a redirect, e.g. `{ '/': '/demo/' }`. */
  redirects?: Record<string, string>;
  /** Inline pages, e.g. a test page at `/test.html`. */
  pages?: Record<string, string>;
  /** 0 (default): any free port. */
  port?: number;
  host?: string;
}

export interface StaticServer {
  server: Server;
  /** e.g. http://127.0.0.1:40123 */
  origin: string;
  close(): Promise<void>;
}

/** Starts the server; files outside the mounted folders are never served. */
export async function startStaticServer(opts: StaticServerOptions): Promise<StaticServer> {
  const mounts = Object.entries(opts.mounts)
    .map(([prefix, dir]) => [prefix.endsWith('/') ? prefix : `${prefix}/`, resolve(dir)] as const)
    .sort((a, b) => b[0].length - a[0].length);
  const server = createServer((req, res) => {
    void (async () => {
      res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
      res.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
      res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
      res.setHeader('Cache-Control', 'no-store');
      let path: string;
      try {
        path = decodeURIComponent(new URL(req.url ?? '/', 'http://127.0.0.1').pathname);
      } catch {
        res.writeHead(400).end();
        return;
      }
      const redirect = opts.redirects?.[path];
      if (redirect !== undefined) {
        res.writeHead(302, { Location: redirect }).end();
        return;
      }
      const page = opts.pages?.[path];
      if (page !== undefined) {
        res.writeHead(200, { 'Content-Type': MIME['.html'] }).end(page);
        return;
      }
      const mount = mounts.find(([prefix]) => path.startsWith(prefix) || `${path}/` === prefix);
      if (!mount) {
        res.writeHead(404).end();
        return;
      }
      const [prefix, dir] = mount;
      let file = normalize(join(dir, path.slice(prefix.length)));
      if (file !== dir && !file.startsWith(dir + sep)) {
        res.writeHead(403).end();
        return;
      }
      try {
        let s = await stat(file);
        if (s.isDirectory()) {
          file = join(file, 'index.html');
          s = await stat(file);
        }
        if (!s.isFile()) throw new Error('not a file');
        res.writeHead(200, {
          'Content-Type': MIME[extname(file).toLowerCase()] ?? 'application/octet-stream',
          'Content-Length': s.size,
        });
        createReadStream(file).pipe(res);
      } catch {
        res.writeHead(404).end();
      }
    })();
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => ok());
  });
  const origin = `http://${opts.host ?? '127.0.0.1'}:${(server.address() as AddressInfo).port}`;
  return {
    server,
    origin,
    close: () => new Promise((ok) => server.close(() => ok())),
  };
}
