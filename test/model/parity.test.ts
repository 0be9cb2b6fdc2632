import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSafetensors } from '../../src/io/safetensors.js';
import { type StreamedTensor, writeSafetensorsStreaming } from '../../src/io/safetensors_writer.js';
import { checkModelFixture } from '../../src/check/index.js';
import { formatComparisons } from '../../src/check/compare.js';
import { useTestBackend } from '../helpers/backend.js';
import { fixture } from '../helpers/fixtures.js';

// The acceptance test of the model: every output of the reference fixture, on every CPU backend.
for (const backend of ['cpu', 'wasm'] as const) {
  describe(`siglip_tiny parity on ${backend}`, () => {
    before(() => useTestBackend(backend));
    after(() => useTestBackend('cpu'));

    it('reproduces every output of cases.json within the fixture tolerance, leaking no tensor', async () => {
      const before = tf.memory().numTensors;
      const rows = await checkModelFixture(fixture('siglip_tiny'));
      const names = rows.map((r) => r.name).sort();
      // Every output the fixture lists is compared (none skipped).
      assert.ok(
        names.includes('logits_per_image') &&
          names.includes('text_with_attention_mask.pooler_output'),
      );
      assert.equal(rows.length, 16);
      const bad = rows.filter((r) => !r.ok);
      assert.deepEqual(bad, [], formatComparisons(rows));
      assert.equal(tf.memory().numTensors, before, 'tensors leaked');
    });
  });
}

describe('fixture outputs this port does not compute', () => {
  before(() => useTestBackend('cpu'));

  it('fail by name with a note instead of being skipped', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'siglip2-missing-'));
    cpSync(fixture('siglip_tiny'), dir, { recursive: true });
    const outputs = await readSafetensors(join(dir, 'outputs.safetensors'));
    const tensors: StreamedTensor[] = [...outputs].map(([name, t]) => ({
      name,
      shape: t.shape,
      data: () => Float32Array.from(t.data as Float32Array),
    }));
    tensors.push({ name: 'vision.made_up_output', shape: [2], data: () => new Float32Array(2) });
    await writeSafetensorsStreaming(join(dir, 'outputs.safetensors'), tensors);
    const rows = await checkModelFixture(dir);
    const made = rows.find((r) => r.name === 'vision.made_up_output');
    assert.ok(made);
    assert.equal(made.ok, false);
    assert.match(made.note ?? '', /does not compute an output of that name/);
    assert.equal(rows.filter((r) => !r.ok).length, 1, formatComparisons(rows));
    rmSync(dir, { recursive: true, force: true });
  });
});
