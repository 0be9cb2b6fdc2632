/**
 * Parity runs in headless Chromium: the browser build (dist/web/siglip2.js) and the converted model are served
 * from 127.0.0.1, and a page runs the inputs on each browser backend.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { chromiumUnavailable, launchChromium } from '../browser/chromium.js';
import { startStaticServer } from '../browser/server.js';
import { webBuildDir } from '../browser/web_build.js';
import type { BackendRun, NamedArray, ParityInputs, ParityOutputs, RunStatus } from './types.js';

export type BrowserBackend = 'webgpu' | 'wasm';

const PAGE = `<!doctype html><meta charset="utf-8"><title>siglip2 parity</title>
<script type="module">
import * as siglip2 from '/siglip2.js';
globalThis.siglip2 = siglip2;
globalThis.siglip2Ready = true;
</script>`;

/** An input as it crosses into the page (typed arrays become plain arrays). */
interface PageArray {
  data: number[];
  shape: number[];
  dtype: 'float32' | 'int32';
}

function toPage(inputs: ParityInputs): Record<string, PageArray> {
  const out: Record<string, PageArray> = {};
  for (const [k, v] of Object.entries(inputs) as [string, NamedArray | undefined][]) {
    if (!v) continue;
    const dtype = v.data instanceof Float32Array ? 'float32' : 'int32';
    out[k] = { data: Array.from(v.data), shape: v.shape, dtype };
  }
  return out;
}

const firstLine = (e: unknown) => (e as Error).message.split('\n')[0];

/**
 * Runs the model in headless Chromium on each of `backends`. When Chromium cannot be driven here every run is
 * `unavailable`; a backend the page cannot start (e.g. no navigator.gpu) is `unavailable` too.
 */
export async function runInChromium(
  backends: BrowserBackend[],
  modelDir: string,
  inputs: ParityInputs,
): Promise<BackendRun[]> {
  const all = (status: RunStatus, reason: string): BackendRun[] =>
    backends.map((b) => ({ backend: `chromium-${b}`, status, reason, seconds: 0 }));
  const why = await chromiumUnavailable();
  if (why !== undefined) return all('unavailable', `unavailable: Chromium: ${why}`);
  const web = webBuildDir();
  if (!existsSync(join(web, 'siglip2.js'))) {
    return all('failed', `failed: ${web}/siglip2.js is missing: run npm run build:web`);
  }
  const server = await startStaticServer({
    mounts: { '/': web, '/model/': modelDir },
    pages: { '/parity.html': PAGE },
  });
  const runs: BackendRun[] = [];
  try {
    let browser: Awaited<ReturnType<typeof launchChromium>>;
    try {
      browser = await launchChromium();
    } catch (e) {
      return all('failed', `failed: Chromium did not start: ${firstLine(e)}`);
    }
    try {
      const pageInputs = toPage(inputs);
      for (const backend of backends) {
        runs.push(await runOnPage(browser, server.origin, backend, pageInputs));
      }
    } finally {
      await browser.close();
    }
  } finally {
    await server.close();
  }
  return runs;
}

async function runOnPage(
  browser: Awaited<ReturnType<typeof launchChromium>>,
  origin: string,
  backend: BrowserBackend,
  inputs: Record<string, PageArray>,
): Promise<BackendRun> {
  const page = await browser.newPage();
  const messages: string[] = [];
  page.on('pageerror', (e) => messages.push(e.message));
  const t0 = performance.now();
  const seconds = () => (performance.now() - t0) / 1000;
  try {
    await page.goto(`${origin}/parity.html`);
    await page.waitForFunction(
      () => (globalThis as { siglip2Ready?: boolean }).siglip2Ready,
      null,
      { timeout: 60000 },
    );
    const r = await page.evaluate(
      async ({ backend, inputs }) => {
        type Lib = typeof import('../web.js');
        const s = (globalThis as unknown as { siglip2: Lib }).siglip2;
        const tf = s.tf;
        let model: Awaited<ReturnType<Lib['loadSiglip']>>;
        try {
          model = await s.loadSiglip(`${location.origin}/model/`, {
            backend,
            backendOptions: { wasmPaths: `${location.origin}/wasm/` },
          });
        } catch (e) {
          if (e instanceof s.BackendUnavailableError) {
            return { status: 'unavailable' as const, reason: e.message };
          }
          throw e;
        }
        const tensors: Record<string, InstanceType<typeof tf.Tensor>> = {};
        for (const [k, v] of Object.entries(inputs))
          tensors[k] = tf.tensor(v.data, v.shape, v.dtype);
        const out = model.forward(tensors);
        const outputs: Record<string, { data: number[]; shape: number[] }> = {};
        for (const [k, t] of Object.entries(s.outputsByHfName(out))) {
          outputs[k] = { data: Array.from(await t.data()), shape: t.shape };
        }
        s.disposeOutputs(out);
        tf.dispose(Object.values(tensors));
        model.dispose();
        return { status: 'ok' as const, reason: model.backendReport?.reason ?? backend, outputs };
      },
      { backend, inputs },
    );
    if (r.status === 'unavailable') {
      return {
        backend: `chromium-${backend}`,
        status: 'unavailable',
        reason: `unavailable: chromium: ${r.reason}`,
        seconds: seconds(),
      };
    }
    const outputs: ParityOutputs = {};
    for (const [k, v] of Object.entries(r.outputs)) {
      outputs[k] = { data: Float32Array.from(v.data), shape: v.shape };
    }
    return {
      backend: `chromium-${backend}`,
      status: 'ok',
      reason: `chromium: ${r.reason}`,
      outputs,
      seconds: seconds(),
    };
  } catch (e) {
    return {
      backend: `chromium-${backend}`,
      status: 'failed',
      reason: `failed: ${firstLine(e)}${messages.length ? ` (${messages.join(' | ')})` : ''}`,
      seconds: seconds(),
    };
  } finally {
    await page.close();
  }
}
