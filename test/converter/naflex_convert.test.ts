import * as tf from '@tensorflow/tfjs';
import { strict as assert } from 'node:assert';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { convertCheckpoint } from '../../converter/convert.js';
import '../../src/index.js';
import { compareArrays, formatComparisons } from '../../src/check/compare.js';
import { toTensor } from '../../src/check/model_fixture.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { loadSiglip } from '../../src/loader/index.js';
import { disposeOutputs } from '../../src/model/siglip_model.js';
import { useTestBackend } from '../helpers/backend.js';
import { fixture } from '../helpers/fixtures.js';
import { tempDir } from './helpers.js';

// NaFlex checkpoints (model_type siglip2) convert and load like the fixed-resolution ones.
describe('converter: siglip2_naflex_tiny round trip', function () {
  let root: string;
  before(async () => {
    await useTestBackend('cpu');
    root = tempDir('naflex-convert');
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('converts, loads with loadSiglip and reproduces the fixture outputs', async function () {
    const out = join(root, 'float32');
    await convertCheckpoint(fixture('siglip2_naflex_tiny'), out, { dtype: 'float32' });
    const model = await loadSiglip(out);
    const inputs = await readSafetensors(fixture('siglip2_naflex_tiny', 'inputs.safetensors'));
    const expected = await readSafetensors(fixture('siglip2_naflex_tiny', 'outputs.safetensors'));
    const t = (name: string) => toTensor(inputs.get(name)!);
    const feeds = {
      pixelValues: t('pixel_values'),
      pixelAttentionMask: t('pixel_attention_mask'),
      spatialShapes: t('spatial_shapes'),
      inputIds: t('input_ids'),
    };
    const result = model.forward(feeds);
    try {
      const actual: Record<string, tf.Tensor | undefined> = {
        logits_per_image: result.logitsPerImage,
        image_embeds: result.imageEmbeds,
        'vision.last_hidden_state': result.vision?.lastHiddenState,
        'vision.pooler_output': result.vision?.poolerOutput,
        'text.pooler_output': result.text?.poolerOutput,
      };
      const rows = Object.entries(actual).map(([name, a]) => {
        const g = expected.get(name)!;
        return compareArrays(
          name,
          a!.dataSync(),
          g.data,
          g.shape,
          { atol: 1e-4, rtol: 1e-4 },
          a!.shape,
        );
      });
      assert.ok(
        rows.every((r) => r.ok),
        formatComparisons(rows),
      );
    } finally {
      disposeOutputs(result);
      tf.dispose(Object.values(feeds));
      model.dispose();
    }
  });
});
