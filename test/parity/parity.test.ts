/**
 * Parity across backends in Node (cpu and wasm; the browser backends are covered in test/browser): NaFlex models
 * with the fixture's mask and spatial shapes and with random inputs, structured availability, and the exit codes
 * of `siglip2 parity`.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { parseConfig } from '../../src/model/config.js';
import { HF_OUTPUT_NAMES } from '../../src/model/siglip_model.js';
import { compareRuns, randomInputs, readFixtureCase, runParity } from '../../src/parity/index.js';
import { REPO_ROOT, fixture } from '../helpers/fixtures.js';
import { readFileSync } from 'node:fs';

const CLI = join(REPO_ROOT, 'dist/src/cli/main.js');

function siglip2(args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    timeout: 300_000,
    env: { ...process.env, ...env },
  });
}

describe('parity: NaFlex models', function () {
  this.timeout(300_000);

  it('runs siglip2_naflex_tiny with its pixel_attention_mask and spatial_shapes on cpu and wasm, within the fixture tolerance', async () => {
    const report = await runParity(fixture('siglip2_naflex_tiny'), {
      backends: ['cpu', 'wasm'],
      fixture: fixture('siglip2_naflex_tiny'),
    });
    assert.deepEqual(
      report.runs.map((r) => [r.backend, r.status]),
      [
        ['cpu', 'ok'],
        ['wasm', 'ok'],
      ],
      report.runs.map((r) => r.reason).join('\n'),
    );
    const vsFixture = report.rows.filter((r) => r.b === 'fixture');
    assert.equal(vsFixture.length, 2 * HF_OUTPUT_NAMES.length);
    assert.deepEqual(
      report.rows.filter((r) => !r.comparison.ok).map((r) => `${r.a} vs ${r.b}: ${r.output}`),
      [],
    );
    assert.equal(report.ok, true);
    // The comparison can fail: one golden value moved by 1e-2 is caught on both backends.
    const { golden, tolerance } = await readFixtureCase(fixture('siglip2_naflex_tiny'));
    const moved = Float32Array.from(golden['vision.pooler_output'].data);
    moved[5] += 1e-2;
    const rows = compareRuns(
      report.runs,
      { ...golden, 'vision.pooler_output': { ...golden['vision.pooler_output'], data: moved } },
      tolerance,
    );
    assert.deepEqual(
      rows.filter((r) => !r.comparison.ok).map((r) => `${r.a} vs ${r.b}: ${r.output}`),
      ['cpu vs fixture: vision.pooler_output', 'wasm vs fixture: vision.pooler_output'],
    );
  });

  it('reads the NaFlex inputs of the fixture (mask and spatial shapes as int32)', async () => {
    const { inputs } = await readFixtureCase(fixture('siglip2_naflex_tiny'));
    assert.deepEqual(inputs.pixelValues.shape, [4, 24, 768]);
    assert.deepEqual(inputs.pixelAttentionMask?.shape, [4, 24]);
    assert.deepEqual(Array.from(inputs.spatialShapes?.data ?? []), [3, 5, 2, 2, 4, 6, 4, 4]);
    const mask = Array.from(inputs.pixelAttentionMask?.data ?? []);
    assert.equal(
      mask.reduce((a, b) => a + b, 0),
      15 + 4 + 24 + 16,
    );
    const fixed = await readFixtureCase(fixture('siglip_tiny'));
    assert.equal(fixed.inputs.pixelAttentionMask, undefined);
    assert.equal(fixed.inputs.spatialShapes, undefined);
  });

  it('makes random NaFlex inputs: one full grid, one padded image with height down- and width upscaled', () => {
    const config = parseConfig(
      JSON.parse(readFileSync(fixture('siglip2_naflex_tiny', 'config.json'), 'utf8')),
    );
    const inputs = randomInputs(config);
    // 4 x 4 position grid: (4, 4) and (2, 5) patches, padded to 16
    assert.deepEqual(Array.from(inputs.spatialShapes!.data), [4, 4, 2, 5]);
    assert.deepEqual(inputs.pixelValues.shape, [2, 16, 3 * 16 * 16]);
    const mask = Array.from(inputs.pixelAttentionMask!.data);
    assert.deepEqual(mask.slice(0, 16), new Array(16).fill(1));
    assert.deepEqual(mask.slice(16), [...new Array(10).fill(1), ...new Array(6).fill(0)]);
    const px = inputs.pixelValues.data;
    const width = 768;
    assert.ok(
      px.slice(26 * width).every((v) => v === 0),
      'padding patches are zero',
    );
    assert.ok(px.slice(25 * width, 26 * width).some((v) => v !== 0));
    assert.deepEqual(inputs.inputIds.shape, [3, 16]);
  });

  it('compares cpu and wasm on random NaFlex inputs', async () => {
    const report = await runParity(fixture('siglip2_naflex_tiny'), { backends: ['cpu', 'wasm'] });
    assert.match(report.inputs, /NaFlex/);
    assert.equal(report.rows.length, HF_OUTPUT_NAMES.length);
    assert.ok(report.ok, report.rows.map((r) => `${r.output} ${r.comparison.maxAbs}`).join('\n'));
  });
});

describe('siglip2 parity: exit codes and availability', function () {
  this.timeout(300_000);
  const noChromium = { SIGLIP2_CHROMIUM: '/nonexistent/chromium' };

  it('exits 1 when a backend asked for is unavailable, reporting it as structured data', () => {
    const r = siglip2(
      [
        'parity',
        '--model',
        fixture('siglip_tiny'),
        '--fixture',
        fixture('siglip_tiny'),
        '--backends',
        'cpu,chromium-wasm',
        '--json',
      ],
      noChromium,
    );
    assert.equal(r.status, 1, r.stderr);
    const report = JSON.parse(r.stdout) as {
      ok: boolean;
      unavailable: string[];
      runs: { backend: string; status: string; reason: string }[];
    };
    assert.equal(report.ok, false);
    assert.deepEqual(report.unavailable, ['chromium-wasm']);
    assert.deepEqual(
      report.runs.map((x) => [x.backend, x.status]),
      [
        ['cpu', 'ok'],
        ['chromium-wasm', 'unavailable'],
      ],
    );
    assert.match(report.runs[1].reason, /\/nonexistent\/chromium not found/);
  });

  it('--allow-missing exits 0 and still names the missing backend', () => {
    const r = siglip2(
      [
        'parity',
        '--model',
        fixture('siglip_tiny'),
        '--fixture',
        fixture('siglip_tiny'),
        '--backends',
        'cpu,chromium-wasm',
        '--allow-missing',
      ],
      noChromium,
    );
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /chromium-wasm\s+unavailable/);
    assert.match(
      r.stdout,
      /all 8 comparisons within tolerance \(unavailable, allowed by --allow-missing: chromium-wasm\)/,
    );
  });

  it('exits 1 beyond tolerance (atol = rtol = 0 between cpu and wasm)', () => {
    const r = siglip2([
      'parity',
      '--model',
      fixture('siglip_tiny'),
      '--backends',
      'cpu,wasm',
      '--atol',
      '0',
      '--rtol',
      '0',
    ]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stdout, /parity failed: \d+ of 8 comparisons out of tolerance/);
  });
});
