import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeSafetensors, readSafetensors } from '../../src/io/safetensors.js';
import { REPO_ROOT, fixture } from '../helpers/fixtures.js';

const CLI = join(REPO_ROOT, 'dist/src/cli/main.js');

function siglip2(...args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000 });
}

describe('siglip2 check', () => {
  it('passes the tiny fixture on wasm and prints each output with its errors', () => {
    const r = siglip2('check', fixture('siglip_tiny'), '--backend', 'wasm');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /logits_per_image\s+\S+e-\d+\s+\S+\s+ok/);
    assert.match(r.stdout, /all 16 outputs within tolerance/);
  });

  it('--json gives a machine-readable report', () => {
    const r = siglip2('check', fixture('siglip_tiny'), '--json');
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout) as {
      ok: boolean;
      kind: string;
      outputs: { name: string; maxAbs: number }[];
    };
    assert.equal(report.ok, true);
    assert.equal(report.kind, 'model');
    assert.equal(report.outputs.length, 16);
    assert.ok(report.outputs.every((o) => o.maxAbs < 1e-4));
  });

  it('exits non-zero and marks the output when a golden value is off', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'siglip2-check-'));
    for (const f of ['cases.json', 'config.json', 'model.safetensors', 'inputs.safetensors']) {
      copyFileSync(fixture('siglip_tiny', f), join(dir, f));
    }
    const outputs = await readSafetensors(fixture('siglip_tiny', 'outputs.safetensors'));
    const edited = [...outputs.values()].map((t) => {
      const data = t.data.slice();
      if (t.name === 'text_embeds') data[5] += 1e-3;
      return { name: t.name, shape: t.shape, data };
    });
    writeFileSync(join(dir, 'outputs.safetensors'), encodeSafetensors(edited));
    const r = siglip2('check', dir);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /text_embeds\s+1\.00e-3\s+\S+\s+FAIL/);
    assert.match(r.stdout, /1 of 16 outputs out of tolerance/);
  });

  it('runs the tokenizer and image-preprocessing fixture kinds', () => {
    const t = siglip2('check', fixture('tokenizer_gemma_siglip2'), '--json');
    assert.equal(t.status, 0, t.stderr);
    assert.equal((JSON.parse(t.stdout) as { kind: string }).kind, 'tokenizer');
    const i = siglip2('check', fixture('image_preprocessing'), '--json');
    assert.equal(i.status, 0, i.stderr);
    assert.equal((JSON.parse(i.stdout) as { kind: string }).kind, 'image_preprocessing');
  });

  it('says clearly what is wrong with a folder that is not a fixture', () => {
    const r = siglip2('check', mkdtempSync(join(tmpdir(), 'siglip2-empty-')));
    assert.equal(r.status, 2);
    assert.match(r.stderr, /not a fixture folder of a known kind/);
    const b = siglip2('check', fixture('siglip_tiny'), '--backend', 'gpu9000');
    assert.equal(b.status, 2);
    assert.match(
      b.stderr,
      /--backend gpu9000: expected one of auto, cpu, wasm, webgpu, tensorflow/,
    );
  });
});
