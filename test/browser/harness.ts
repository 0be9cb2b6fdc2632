/**
 * Runs code in headless Chromium (Debian's /usr/bin/chromium driven by playwright-core; no browser download).
 * The library's static server (src/browser/server.ts, the one `siglip2 serve-demo` uses) serves the repository
 * from 127.0.0.1 with COOP/COEP headers, so the page is cross-origin isolated and wasm threads
 * (SharedArrayBuffer) work. The test page loads the bundle that `npm run build:browser` writes to
 * dist/test/browser/bundle/entry.js, which sets globalThis.siglip2Test.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { chromiumUnavailable, launchChromium } from '../../src/browser/chromium.js';
import { startStaticServer } from '../../src/browser/server.js';
import { REPO_ROOT } from '../helpers/fixtures.js';

export const BUNDLE = 'dist/test/browser/bundle/entry.js';

const PAGE = `<!doctype html><meta charset="utf-8"><title>siglip2-tfjs browser test</title>
<script type="module">
import '/${BUNDLE}';
globalThis.siglip2Ready = true;
</script>`;

/** Why the browser tests cannot run here, or undefined when they can. */
export async function browserUnavailable(): Promise<string | undefined> {
  const why = await chromiumUnavailable();
  if (why !== undefined) return why;
  if (!existsSync(join(REPO_ROOT, BUNDLE))) return `${BUNDLE} not built (npm run build:browser)`;
  return undefined;
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
  const why = await browserUnavailable();
  if (why !== undefined) throw new Error(`browser harness: ${why}`);
  const server = await startStaticServer({ mounts: { '/': root }, pages: { '/': PAGE } });
  let browser: Browser | undefined;
  try {
    browser = await launchChromium();
    const page = await browser.newPage();
    const messages: string[] = [];
    page.on('console', (m) => messages.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => messages.push(`pageerror: ${e.message}`));
    await page.goto(`${server.origin}/`);
    await page.waitForFunction(
      () => (globalThis as { siglip2Ready?: boolean }).siglip2Ready === true,
      null,
      { timeout: 30000 },
    );
    const opened = browser;
    return {
      page,
      origin: server.origin,
      console: messages,
      close: async () => {
        await opened.close();
        await server.close();
      },
    };
  } catch (e) {
    await browser?.close();
    await server.close();
    throw e;
  }
}
