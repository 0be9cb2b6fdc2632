import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeSafetensors, readSafetensors } from '../../src/io/safetensors.js';
import { loadHfCheckpoint } from '../../src/model/load_hf.js';
import type { SiglipModel } from '../../src/model/siglip_model.js';
import { useTestBackend } from '../helpers/backend.js';
import { fixture } from '../helpers/fixtures.js';

/** A copy of the tiny checkpoint folder whose tensors can be edited. */
async function editedCheckpoint(
  edit: (
    tensors: {
      name: string;
      shape: number[];
      data: Float32Array | Int32Array | Uint8Array;
      dtype?: 'F32' | 'I32';
    }[],
  ) => void,
): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'siglip2-bad-'));
  copyFileSync(fixture('siglip_tiny', 'config.json'), join(dir, 'config.json'));
  const loaded = await readSafetensors(fixture('siglip_tiny', 'model.safetensors'));
  const tensors = [...loaded.values()].map((t) => ({ name: t.name, shape: t.shape, data: t.data }));
  edit(tensors);
  writeFileSync(join(dir, 'model.safetensors'), encodeSafetensors(tensors));
  return dir;
}

describe('bad checkpoints give errors that name the file, tensor or field', () => {
  before(() => useTestBackend('cpu'));

  it('a missing config.json', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'siglip2-bad-'));
    await assert.rejects(
      loadHfCheckpoint(dir),
      /config\.json: cannot read the model configuration/,
    );
  });

  it('a malformed config.json', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'siglip2-bad-'));
    writeFileSync(join(dir, 'config.json'), '{"model_type": "siglip",');
    await assert.rejects(loadHfCheckpoint(dir), /config\.json: not valid JSON/);
  });

  it('a config.json with an unsupported model_type', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'siglip2-bad-'));
    writeFileSync(join(dir, 'config.json'), '{"model_type": "clip"}');
    await assert.rejects(loadHfCheckpoint(dir), /config\.json: model_type "clip" is not supported/);
  });

  it('a folder without weights', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'siglip2-bad-'));
    copyFileSync(fixture('siglip_tiny', 'config.json'), join(dir, 'config.json'));
    await assert.rejects(
      loadHfCheckpoint(dir),
      /no model\.safetensors or model\.safetensors\.index\.json/,
    );
  });

  it('a missing tensor', async () => {
    const dir = await editedCheckpoint((ts) =>
      ts.splice(
        ts.findIndex((t) => t.name === 'vision_model.head.probe'),
        1,
      ),
    );
    await assert.rejects(
      loadHfCheckpoint(dir),
      /lacks 1 tensor\(s\) the configuration needs: vision_model\.head\.probe/,
    );
  });

  it('a misshaped tensor', async () => {
    const dir = await editedCheckpoint((ts) => {
      const t = ts.find((x) => x.name === 'text_model.head.weight')!;
      t.shape = [24, 96];
    });
    await assert.rejects(
      loadHfCheckpoint(dir),
      /model\.safetensors: tensor 'text_model\.head\.weight' has shape \[24, 96\], the configuration needs \[48, 48\]/,
    );
  });

  it('an integer tensor where a weight belongs', async () => {
    const dir = await editedCheckpoint((ts) => {
      const t = ts.find((x) => x.name === 'logit_bias')!;
      t.data = new Int32Array([1]);
      t.dtype = 'I32';
    });
    await assert.rejects(
      loadHfCheckpoint(dir),
      /tensor 'logit_bias' has dtype I32; weights must be F32, F16 or BF16/,
    );
  });

  it('reports tensors the model does not use', async () => {
    const dir = await editedCheckpoint((ts) =>
      ts.push({ name: 'extra.buffer', shape: [2], data: new Float32Array(2) }),
    );
    let unused: string[] = [];
    const model = await loadHfCheckpoint(dir, { onUnused: (names) => (unused = names) });
    model.dispose();
    assert.deepEqual(unused, ['extra.buffer']);
  });

  it('a sharded checkpoint whose index names a missing shard', async () => {
    const dir = await editedCheckpoint(() => undefined);
    writeFileSync(
      join(dir, 'model.safetensors.index.json'),
      JSON.stringify({ weight_map: { logit_scale: 'model-00001-of-00002.safetensors' } }),
    );
    await assert.rejects(
      loadHfCheckpoint(dir),
      /model-00001-of-00002\.safetensors: cannot open safetensors file/,
    );
  });
});

describe('bad inference inputs give errors that name the argument', () => {
  let model: SiglipModel;
  before(async () => {
    await useTestBackend('cpu');
    model = await loadHfCheckpoint(fixture('siglip_tiny'));
  });
  after(() => model.dispose());

  const cases: [string, () => unknown, RegExp][] = [
    [
      'pixels of the wrong size',
      () => model.forward({ pixelValues: tf.zeros([1, 3, 32, 32]) }),
      /pixelValues must have shape \[batch, 3, 64, 64\], got \[1, 3, 32, 32\]/,
    ],
    [
      'channels-last pixels',
      () => model.forward({ pixelValues: tf.zeros([1, 64, 64, 3]) }),
      /pixelValues must have shape \[batch, 3, 64, 64\]/,
    ],
    [
      'int pixels',
      () => model.forward({ pixelValues: tf.zeros([1, 3, 64, 64], 'int32') }),
      /pixelValues must be float32, got int32/,
    ],
    [
      'float token ids',
      () => model.forward({ inputIds: tf.zeros([1, 16]) }),
      /inputIds must be int32, got float32/,
    ],
    [
      'too many tokens',
      () => model.forward({ inputIds: tf.zeros([1, 17], 'int32') }),
      /inputIds must have shape \[batch, length\] with 1 <= length <= 16, got \[1, 17\]/,
    ],
    [
      'a 1-D id list',
      () => model.forward({ inputIds: tf.zeros([16], 'int32') }),
      /inputIds must have shape \[batch, length\]/,
    ],
    [
      'an id outside the vocabulary',
      () => model.forward({ inputIds: tf.tensor2d([[5, 1000]], undefined, 'int32') }),
      /inputIds\[0\]\[1\] = 1000 is outside the vocabulary \[0, 1000\)/,
    ],
    [
      'a mask of another shape',
      () =>
        model.forward({ inputIds: tf.zeros([1, 16], 'int32'), attentionMask: tf.ones([1, 15]) }),
      /attentionMask must have the shape of inputIds \[1, 16\], got \[1, 15\]/,
    ],
  ];
  for (const [what, run, message] of cases) {
    it(what, () => {
      const before = tf.memory().numTensors;
      assert.throws(run, message);
      assert.ok(tf.memory().numTensors <= before + 2, 'only the test inputs remain');
    });
  }

  it('a text-only model refuses images', async () => {
    const textOnly = await loadHfCheckpoint(fixture('siglip_tiny'), { towers: 'text' });
    assert.throws(
      () => textOnly.forward({ pixelValues: tf.zeros([1, 3, 64, 64]) }),
      /loaded without its vision tower/,
    );
    textOnly.dispose();
  });
});
