import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
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
