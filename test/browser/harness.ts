/**
 * Runs code in headless Chromium (Debian's /usr/bin/chromium driven by playwright-core; no browser download).
 * A static server on 127.0.0.1 (random port) serves the repository with COOP/COEP headers, so the page is
 * cross-origin isolated and wasm threads (SharedArrayBuffer) work. The test page loads the bundle that
 * `npm run build:browser` writes to dist/test/browser/bundle/entry.js, which sets globalThis.siglip2Test.
 */
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { REPO_ROOT } from '../helpers/fixtures.js';

export { CHROMIUM, CHROMIUM_FLAGS } from '../../src/browser/chromium.js';
import { CHROMIUM, CHROMIUM_FLAGS } from '../../src/browser/chromium.js';
export const BUNDLE = 'dist/test/browser/bundle/entry.js';

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.map': 'application/json',
};

const PAGE = `<!doctype html><meta charset="utf-8"><title>siglip2-tfjs browser test</title>
<script type="module">
import '/${BUNDLE}';
globalThis.siglip2Ready = true;
</script>`;

/** Why the browser tests cannot run here, or undefined when they can. */
export function browserUnavailable(): string | undefined {
  if (!existsSync(CHROMIUM)) return `${CHROMIUM} not found (apt-get install chromium)`;
  if (!existsSync(join(REPO_ROOT, BUNDLE))) return `${BUNDLE} not built (npm run build:browser)`;
  return undefined;
}

function startServer(root: string): Promise<Server> {
  const server = createServer((req, res) => {
    void (async () => {
      res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
      res.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
      res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
      const path = decodeURIComponent(new URL(req.url ?? '/', 'http://127.0.0.1').pathname);
      if (path === '/' || path === '/index.html') {
        res.writeHead(200, { 'Content-Type': MIME['.html'] }).end(PAGE);
        return;
      }
      const file = normalize(join(root, path));
      if (!file.startsWith(root + sep)) {
        res.writeHead(403).end();
        return;
      }
      try {
        if (!(await stat(file)).isFile()) throw new Error('not a file');
        const body = await readFile(file);
        res
          .writeHead(200, { 'Content-Type': MIME[extname(file)] ?? 'application/octet-stream' })
          .end(body);
      } catch {
        res.writeHead(404).end();
      }
    })();
  });
  return new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => ok(server));
  });
}

export interface BrowserHarness {
  page: Page;
  /** The page's origin, e.g. http://127.0.0.1:40123 */
  origin: string;
  /** Chromium's console messages so far. */
  console: string[];
  close(): Promise<void>;
}

/** Starts the server and Chromium and opens the test page with the bundle loaded. */
export async function startBrowser(root: string = REPO_ROOT): Promise<BrowserHarness> {
  const why = browserUnavailable();
  if (why !== undefined) throw new Error(`browser harness: ${why}`);
  const server = await startServer(resolve(root));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  let browser: Browser | undefined;
  try {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      // playwright gives the browser a fresh temporary profile (--user-data-dir) itself
      args: CHROMIUM_FLAGS,
      headless: true,
    });
    const page = await browser.newPage();
    const messages: string[] = [];
    page.on('console', (m) => messages.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => messages.push(`pageerror: ${e.message}`));
    await page.goto(`${origin}/`);
    await page.waitForFunction(
      () => (globalThis as { siglip2Ready?: boolean }).siglip2Ready === true,
      null,
      {
        timeout: 30000,
      },
    );
    const opened = browser;
    return {
      page,
      origin,
      console: messages,
      close: async () => {
        await opened.close();
        await new Promise((ok) => server.close(ok));
      },
    };
  } catch (e) {
    await browser?.close();
    server.close();
    throw e;
  }
}
