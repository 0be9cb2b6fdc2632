/**
 * Fine-tuning in the browser: the converted tiny fixture model, loaded over HTTP by the browser build
 * (dist/web/siglip2.js), trains in headless Chromium on webgpu (SwiftShader without a GPU) and wasm. Its first-step
 * gradients equal the cpu backend's in Node within the siglip_tiny_loss_grad tolerance, and a few Trainer steps
 * lower the loss. Needs `npm run build:web` (pretest), /usr/bin/chromium and playwright-core.
 */
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { useBackend } from '../../src/backends/index.js';
import { chromiumUnavailable, launchChromium } from '../../src/browser/chromium.js';
import { startStaticServer, type StaticServer } from '../../src/browser/server.js';
import {
  compareGradient,
  gradTolerance,
  readCases,
  zeroAtol,
  zeroParts,
} from '../../src/check/index.js';
import { loadHfCheckpoint } from '../../src/model/load_hf.js';
import { lossAndGrads } from '../../src/train/grads.js';
import { toHfTensors } from '../../src/train/params.js';
import { fixture, REPO_ROOT } from '../helpers/fixtures.js';
import { lossGradFixtureBatch } from '../helpers/loss_grad_batch.js';
import { skipUnavailable } from '../helpers/require_backend.js';
import { convertTinyModel, type TinyModel } from './tiny_model.js';

const WEB = join(REPO_ROOT, 'dist', 'web');
const STEPS = 3;

const PAGE = `<!doctype html><meta charset="utf-8"><title>siglip2 training</title>
<script type="module">
import * as siglip2 from '/siglip2.js';
globalThis.siglip2 = siglip2;
globalThis.siglip2Ready = true;
</script>`;

interface PageResult {
  reason: string;
  loss: number;
  grads: Record<string, { data: number[]; shape: number[] }>;
  steps: { loss: number; gradNorm: number; seconds: number }[];
  leaked: number;
}

interface Reference {
  loss: number;
  grads: Map<string, { data: Float32Array; shape: number[] }>;
}

describe('training in headless Chromium (browser build): webgpu and wasm', function () {
  this.timeout(900000);
  let why: string | undefined;
  let tiny: TinyModel | undefined;
  let server: StaticServer | undefined;
  let browser: Browser | undefined;
  let inputs: { px: number[]; pxShape: number[]; ids: number[]; idsShape: number[] };
  let reference: Reference;

  before(async () => {
    why =
      (await chromiumUnavailable()) ??
      (existsSync(join(WEB, 'siglip2.js')) ? undefined : 'dist/web not built (npm run build:web)');
    if (why !== undefined) return;
    // The reference: the cpu backend in Node on the same pairs (the fixture's checkpoint is siglip_tiny's).
    await useBackend('cpu');
    const batch = await lossGradFixtureBatch();
    const model = await loadHfCheckpoint(fixture('siglip_tiny_loss_grad'), {
      onUnused: () => undefined,
    });
    const { loss, grads } = await lossAndGrads(model, batch);
    const hf = toHfTensors(model, grads);
    reference = { loss: (await loss.data())[0], grads: new Map() };
    for (const [name, t] of hf) {
      reference.grads.set(name, { data: (await t.data()) as Float32Array, shape: t.shape });
    }
    inputs = {
      px: Array.from(await batch.pixelValues.data()),
      pxShape: batch.pixelValues.shape,
      ids: Array.from(await batch.inputIds.data()),
      idsShape: batch.inputIds.shape,
    };
    tf.dispose([loss, ...grads.values(), ...hf.values(), batch.pixelValues, batch.inputIds]);
    model.dispose();
    tiny = await convertTinyModel();
    server = await startStaticServer({
      mounts: { '/': WEB, '/model/': tiny.dir },
      pages: { '/train.html': PAGE },
    });
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await server?.close();
    tiny?.cleanup();
  });

  async function trainIn(backend: 'webgpu' | 'wasm'): Promise<PageResult> {
    if (!browser || !server) throw new Error('browser not started');
    const page = await browser.newPage();
    const messages: string[] = [];
    page.on('pageerror', (e) => messages.push(e.message));
    try {
      await page.goto(`${server.origin}/train.html`);
      await page.waitForFunction(
        () => (globalThis as { siglip2Ready?: boolean }).siglip2Ready,
        null,
        { timeout: 60000 },
      );
      return await page.evaluate(
        async ({ backend, px, pxShape, ids, idsShape, steps }) => {
          type Lib = typeof import('../../src/web.js');
          const s = (globalThis as unknown as { siglip2: Lib }).siglip2;
          const model = await s.loadSiglip(`${location.origin}/model/`, {
            backend,
            backendOptions: { wasmPaths: `${location.origin}/wasm/` },
          });
          const tf = s.tf;
          const batch = {
            pixelValues: tf.tensor(px, pxShape, 'float32'),
            inputIds: tf.tensor(ids, idsShape, 'int32'),
          };
          const before = tf.memory().numTensors;
          const { loss, grads } = await s.lossAndGrads(model, batch);
          const hf = s.toHfTensors(model, grads);
          const out: Record<string, { data: number[]; shape: number[] }> = {};
          for (const [k, t] of hf) out[k] = { data: Array.from(await t.data()), shape: t.shape };
          const lossValue = (await loss.data())[0];
          tf.dispose([loss, ...grads.values(), ...hf.values()]);
          const leaked = tf.memory().numTensors - before;
          const trainer = new s.Trainer(model, { learningRate: 1e-3, maxGradNorm: 1 });
          const rows: { loss: number; gradNorm: number; seconds: number }[] = [];
          for (let i = 0; i < steps; i++) {
            const t0 = performance.now();
            const r = await trainer.step(batch);
            rows.push({
              loss: r.loss,
              gradNorm: r.gradNorm,
              seconds: (performance.now() - t0) / 1000,
            });
          }
          trainer.dispose();
          tf.dispose([batch.pixelValues, batch.inputIds]);
          model.dispose();
          return {
            reason: model.backendReport?.reason ?? backend,
            loss: lossValue,
            grads: out,
            steps: rows,
            leaked,
          };
        },
        { backend, ...inputs, steps: STEPS },
      );
    } catch (e) {
      throw new Error(
        `${(e as Error).message}${messages.length ? ` (${messages.join(' | ')})` : ''}`,
        {
          cause: e,
        },
      );
    } finally {
      await page.close();
    }
  }

  for (const backend of ['webgpu', 'wasm'] as const) {
    it(`${backend}: first-step gradients equal the cpu backend's, and ${STEPS} steps lower the loss`, async function () {
      if (why !== undefined) skipUnavailable(this, `chromium-${backend}`, why);
      const r = await trainIn(backend);
      console.log(`      ${r.reason}`);
      for (const [i, s] of r.steps.entries()) {
        console.log(
          `      step ${i + 1}: loss ${s.loss.toFixed(4)}, grad norm ${s.gradNorm.toFixed(3)}, ${s.seconds.toFixed(2)} s`,
        );
      }
      const cases = await readCases(fixture('siglip_tiny_loss_grad'));
      const tol = gradTolerance(cases);
      const zero = zeroParts(cases);
      const zeroBound = zeroAtol(cases);
      assert.equal(Object.keys(r.grads).length, reference.grads.size);
      let worst = 0;
      const bad: string[] = [];
      for (const [name, ref] of reference.grads) {
        const got = r.grads[name];
        assert.ok(got, `${backend}: no gradient for ${name}`);
        const cmp = compareGradient(
          `grad.${name}`,
          got.data,
          ref.data,
          ref.shape,
          got.shape,
          tol,
          zero,
          zeroBound,
        );
        if (!cmp.ok) bad.push(`${name}: ${cmp.maxAbs} (${cmp.note})`);
        worst = Math.max(worst, cmp.maxRel);
      }
      console.log(
        `      gradients: max difference ${worst.toExponential(1)} of max|grad| (cpu in Node)`,
      );
      assert.deepEqual(bad, [], `${backend}: gradients differ from cpu`);
      assert.ok(Math.abs(r.loss - reference.loss) < 1e-4, `${r.loss} vs ${reference.loss}`);
      assert.equal(r.leaked, 0, 'tensors leaked by lossAndGrads');
      assert.ok(Math.abs(r.steps[0].loss - reference.loss) < 1e-4);
      assert.ok(
        r.steps[STEPS - 1].loss < r.steps[0].loss,
        `losses ${r.steps.map((s) => s.loss).join(' ')}`,
      );
    });
  }
});
