/**
 * The browser build in headless Chromium: the converted tiny fixture model on webgpu and wasm against the
 * fixture's outputs, and the demo page driven like a user (pick an image, type labels, read the bars), with a
 * screenshot in dist/demo-screenshot.png. Needs `npm run build:web` (pretest) and /usr/bin/chromium.
 */
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { basename, join } from 'node:path';
import type { Browser } from 'playwright-core';
import { useBackend } from '../../src/backends/index.js';
import { chromiumUnavailable, launchChromium } from '../../src/browser/chromium.js';
import { startStaticServer, type StaticServer } from '../../src/browser/server.js';
import { formatComparisons } from '../../src/check/compare.js';
import { loadSiglip } from '../../src/loader/load.js';
import '../../src/loader/node.js';
import { HF_OUTPUT_NAMES } from '../../src/model/siglip_model.js';
import { compareRuns, readFixtureCase, runInChromium } from '../../src/parity/index.js';
import { SiglipPipeline } from '../../src/pipeline/index.js';
import { fixture, REPO_ROOT } from '../helpers/fixtures.js';
import { convertTinyModel, type TinyModel } from './tiny_model.js';
import { skipUnavailable } from '../helpers/require_backend.js';

const WEB = join(REPO_ROOT, 'dist', 'web');
export const SCREENSHOT = join(REPO_ROOT, 'dist', 'demo-screenshot.png');

describe('browser build in headless Chromium: tiny model and demo page', function () {
  this.timeout(300000);
  let tiny: TinyModel;

  before(async function () {
    const why =
      (await chromiumUnavailable()) ??
      (existsSync(join(WEB, 'siglip2.js')) ? undefined : 'dist/web not built (npm run build:web)');
    if (why !== undefined) skipUnavailable(this, ['chromium-webgpu', 'chromium-wasm'], why);
    tiny = await convertTinyModel();
  });

  after(() => tiny?.cleanup());

  it('runs the converted tiny fixture on webgpu and wasm within the fixture tolerance', async () => {
    const { inputs, golden } = await readFixtureCase(fixture('siglip_tiny'));
    const runs = await runInChromium(['webgpu', 'wasm'], tiny.dir, inputs);
    for (const r of runs) console.log(`      ${r.backend}: ${r.reason}`);
    assert.deepEqual(
      runs.map((r) => [r.backend, r.outputs !== undefined]),
      [
        ['chromium-webgpu', true],
        ['chromium-wasm', true],
      ],
      runs.map((r) => r.reason).join('\n'),
    );
    assert.match(runs[0].reason, /webgpu/);
    const rows = compareRuns(runs, golden, { atol: 1e-4, rtol: 1e-4 });
    const vsFixture = rows.filter((r) => r.b === 'fixture');
    assert.equal(vsFixture.length, 2 * HF_OUTPUT_NAMES.length);
    const bad = rows.filter((r) => !r.comparison.ok);
    assert.deepEqual(
      bad.map((r) => `${r.a} vs ${r.b}: ${r.output}`),
      [],
      formatComparisons(
        rows.map((r) => ({ ...r.comparison, name: `${r.a} vs ${r.b}: ${r.output}` })),
      ),
    );
  });

  describe('demo page', () => {
    let server: StaticServer;
    let browser: Browser;

    before(async () => {
      server = await startStaticServer({
        mounts: { '/': WEB, '/model/': tiny.dir },
      });
      browser = await launchChromium();
    });

    after(async () => {
      await browser?.close();
      await server?.close();
    });

    it('caches the converted model in IndexedDB and loads it back with loadSiglip, same numbers', async () => {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(`${server.origin}/demo/?autoload=0`);
      const result = await page.evaluate(async (origin) => {
        const lib = (await import(`${origin}/siglip2.js`)) as typeof import('../../src/web.js');
        const { tf } = lib;
        await tf.setBackend('cpu');
        const fromHttp = await lib.loadSiglip(`${origin}/model/`);
        for (const tower of ['vision', 'text', 'scores'] as const) {
          await fromHttp.parts[tower]!.save(`indexeddb://tiny-siglip/${tower}`);
        }
        const fromDb = await lib.loadSiglip('indexeddb://tiny-siglip');
        const pixels = tf.randomUniform([2, 3, 64, 64], -1, 1, 'float32', 3);
        const ids = tf.tensor2d(
          [[5, 6, 7, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]],
          undefined,
          'int32',
        );
        const a = fromHttp.forward({ pixelValues: pixels, inputIds: ids });
        const b = fromDb.forward({ pixelValues: pixels, inputIds: ids });
        const x = Array.from(await a.logitsPerImage!.data());
        const y = Array.from(await b.logitsPerImage!.data());
        return { x, y, backend: tf.getBackend() };
      }, server.origin);
      await page.close();
      assert.deepEqual(errors, []);
      assert.equal(result.backend, 'cpu');
      assert.equal(result.x.length, 2);
      assert.deepEqual(result.y, result.x, 'the IndexedDB copy gives the same logits');
    });

    it('loads the model with a progress bar, scores a picked image against typed labels as Node does, and renders', async () => {
      const page = await browser.newPage({ viewport: { width: 900, height: 820 } });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(`${server.origin}/demo/?backend=wasm&model=/model/`);
      await page.waitForFunction(
        () => {
          const d = (globalThis as { siglip2Demo?: { ready: boolean; error?: string } })
            .siglip2Demo;
          return d?.ready === true || d?.error !== undefined;
        },
        null,
        { timeout: 60000 },
      );
      assert.deepEqual(errors, []);
      assert.match((await page.textContent('#status')) ?? '', /^Loaded /);
      // COOP/COEP from the server make the page cross-origin isolated: wasm runs a thread per core (2 here)
      const cores = await page.evaluate(() => navigator.hardwareConcurrency);
      assert.equal(await page.evaluate(() => crossOriginIsolated), true);
      const threads = Math.min(cores, 8); // every core, up to tfjs-backend-wasm's 8 workers
      assert.match(
        (await page.textContent('#backend-info')) ?? '',
        new RegExp(
          `^Backend: wasm with ${threads} threads? \\(default: all ${cores} logical cores\\)$`,
        ),
      );
      assert.equal(
        await page.$eval('#progress-bar', (e) => (e as HTMLElement).style.width),
        '100%',
      );

      const image = fixture('image_preprocessing', 'images', 'chelsea.png');
      const labels = ['a photo of a cat', 'a rocket launch', 'a cup of coffee'];
      await page.setInputFiles('#file', image);
      await page.fill('#labels', labels.join(', '));
      await page.waitForFunction(
        () => !(document.getElementById('run') as HTMLButtonElement).disabled,
      );
      await page.click('#run');
      await page.waitForFunction(
        () =>
          (globalThis as { siglip2Demo?: { scores?: unknown[] } }).siglip2Demo?.scores !==
          undefined,
        null,
        { timeout: 60000 },
      );
      const shown = await page.$$eval('#bars li', (lis) =>
        lis.map((li) => ({
          label: li.children[0].textContent,
          value: li.children[2].textContent,
          width: (li.children[1] as HTMLElement).style.width,
        })),
      );
      const scores = await page.evaluate(
        () =>
          (globalThis as unknown as { siglip2Demo: { scores: { label: string; score: number }[] } })
            .siglip2Demo.scores,
      );
      assert.match((await page.textContent('#timings')) ?? '', /classified in \d+ ms/);
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
      await page.close();

      // The same image, labels and model in Node on cpu (image decoded by sharp instead of the browser).
      await useBackend('cpu');
      const model = await loadSiglip(tiny.dir);
      const pipeline = await SiglipPipeline.fromLoadedModel(model);
      const expected = await pipeline.classify(image, labels);
      model.dispose();
      assert.equal(tf.getBackend(), 'cpu');
      // Sorted high to low, as the pipeline returns them; the same order and values as in Node.
      assert.deepEqual(
        shown.map((s) => s.label),
        expected.map((e) => e.label),
      );
      assert.deepEqual([...labels].sort(), expected.map((e) => e.label).sort());
      for (let i = 0; i < labels.length; i++) {
        assert.equal(scores[i].label, expected[i].label);
        assert.ok(
          Math.abs(scores[i].score - expected[i].score) < 1e-4,
          `${expected[i].label}: browser ${scores[i].score}, node ${expected[i].score}`,
        );
        assert.equal(shown[i].value, `${(100 * expected[i].score).toFixed(1)}%`);
      }
    });

    it('folder search: picks a folder of images, searches it by text and ranks them as Node does', async () => {
      const images = ['chelsea.png', 'rocket.jpg', 'coffee_portrait.png', 'camera.png'];
      const tmp = mkdtempSync(join(os.tmpdir(), 'siglip2-folder-'));
      const folder = join(tmp, 'photos');
      mkdirSync(folder);
      for (const f of images)
        copyFileSync(fixture('image_preprocessing', 'images', f), join(folder, f));
      const query = 'a photo of a cat';
      const page = await browser.newPage({ viewport: { width: 900, height: 900 } });
      try {
        const errors: string[] = [];
        page.on('pageerror', (e) => errors.push(e.message));
        await page.goto(`${server.origin}/demo/?backend=wasm&model=/model/`);
        await page.waitForFunction(
          () => (globalThis as { siglip2Demo?: { ready: boolean } }).siglip2Demo?.ready === true,
          null,
          { timeout: 60000 },
        );
        await page.click('.tab[data-tab="search"]');
        assert.equal(await page.isVisible('#search'), true);
        await page.setInputFiles('#folder', folder);
        await page.waitForFunction(
          () =>
            (globalThis as { siglip2Demo?: { embedded?: number } }).siglip2Demo?.embedded !==
            undefined,
          null,
          { timeout: 120000 },
        );
        assert.match(
          (await page.textContent('#folder-status')) ?? '',
          /^4 images embedded in \d+ ms/,
        );
        await page.fill('#query', query);
        await page.click('#search-go');
        await page.waitForFunction(
          () =>
            (globalThis as { siglip2Demo?: { ranking?: unknown[] } }).siglip2Demo?.ranking !==
            undefined,
          null,
          { timeout: 60000 },
        );
        const ranking = await page.evaluate(
          () =>
            (
              globalThis as unknown as {
                siglip2Demo: { ranking: { name: string; logit: number }[] };
              }
            ).siglip2Demo.ranking,
        );
        const captions = await page.$$eval('#results li span', (spans) =>
          spans.map((s) => s.textContent ?? ''),
        );
        const shownImages = await page.$$eval('#results li img', (imgs) =>
          imgs.map((i) => (i as HTMLImageElement).naturalWidth),
        );
        assert.deepEqual(errors, []);

        // The same folder and query in Node on cpu: embeddings, then logit = cos * scale + bias, best first.
        await useBackend('cpu');
        const model = await loadSiglip(tiny.dir);
        const pipeline = await SiglipPipeline.fromLoadedModel(model);
        const paths = images.map((f) => join(folder, f));
        const imgs = await pipeline.embedImages(paths);
        const q = (await pipeline.embedTexts([query])).data;
        const { scale, bias } = model.logitScaleAndBias();
        const d = imgs.dims[1];
        const expected = paths
          .map((p, i) => {
            let dot = 0;
            for (let j = 0; j < d; j++) dot += q[j] * imgs.data[i * d + j];
            return { name: basename(p), logit: dot * scale + bias };
          })
          .sort((a, b) => b.logit - a.logit);
        model.dispose();

        assert.deepEqual(
          ranking.map((r) => basename(r.name)),
          expected.map((e) => e.name),
          `browser ${JSON.stringify(ranking)}, node ${JSON.stringify(expected)}`,
        );
        assert.ok(
          ranking.every((r) => r.name.startsWith('photos/')),
          'names keep the folder path',
        );
        console.log(
          `      ranking: ${expected.map((e) => `${e.name} ${e.logit.toFixed(4)}`).join(', ')}`,
        );
        for (let i = 0; i < expected.length; i++) {
          const pct = (100 / (1 + Math.exp(-ranking[i].logit))).toFixed(1);
          assert.equal(captions[i], `${pct}%  photos/${expected[i].name}`);
          // PNG pixels are the same in both; a JPEG is decoded by Chromium in the page and by libvips (sharp) in
          // Node, whose IDCTs differ by a unit here and there (8e-3 in this logit), so only its rank is compared.
          if (expected[i].name.endsWith('.jpg')) continue;
          assert.ok(
            Math.abs(ranking[i].logit - expected[i].logit) < 1e-4,
            `${expected[i].name}: browser ${ranking[i].logit}, node ${expected[i].logit}`,
          );
        }
        assert.equal(shownImages.length, 4);
        assert.ok(
          shownImages.every((w) => w > 0),
          'every result shows its picture',
        );
      } finally {
        await page.close();
        rmSync(tmp, { recursive: true, force: true });
      }
    });
  });
});
