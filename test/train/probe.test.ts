import * as tf from '@tensorflow/tfjs';
import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSafetensors } from '../../src/io/safetensors.js';
import { loadHfCheckpoint } from '../../src/model/load_hf.js';
import { LinearProbe, embedImages, readLabelledFolder } from '../../src/train/probe.js';
import { fixture } from '../helpers/fixtures.js';

describe('train: linear probe', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('embeds images as the reference image_embeds and separates them with a linear head', async () => {
    const dir = fixture('siglip_tiny');
    const model = await loadHfCheckpoint(dir, { onUnused: () => undefined });
    const inputs = await readSafetensors(join(dir, 'inputs.safetensors'));
    const outputs = await readSafetensors(join(dir, 'outputs.safetensors'));
    const px = inputs.get('pixel_values');
    const ref = outputs.get('image_embeds');
    assert.ok(px && ref);
    const pixels = tf.tensor(px.data as Float32Array, px.shape);
    const embeds = await embedImages(model, pixels, 1);
    const got = embeds.dataSync();
    ref.data.forEach((v, i) => assert.ok(Math.abs(got[i] - v) < 1e-4, `image_embeds[${i}]`));
    const labels = Array.from({ length: px.shape[0] }, (_, i) => i);
    const probe = await LinearProbe.fit(embeds, labels, labels.length, {
      epochs: 200,
      learningRate: 0.05,
    });
    assert.equal(await probe.accuracy(embeds, labels), 1);
    await assert.rejects(() => probe.accuracy(embeds, [0]), /embeddings but 1 labels/);
    await assert.rejects(() => LinearProbe.fit(embeds, [0], 2), /labels/);
    probe.dispose();
    tf.dispose([pixels, embeds]);
    model.dispose();
  });

  it('reads a labelled folder (one subfolder per class)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'labelled-'));
    for (const c of ['dog', 'cat']) {
      mkdirSync(join(dir, c));
      writeFileSync(join(dir, c, 'a.png'), '');
      writeFileSync(join(dir, c, 'b.jpg'), '');
      writeFileSync(join(dir, c, 'notes.txt'), '');
    }
    const f = await readLabelledFolder(dir);
    assert.deepEqual(f.classes, ['cat', 'dog']);
    assert.deepEqual(f.labels, [0, 0, 1, 1]);
    assert.equal(f.files[2], join(dir, 'dog', 'a.png'));
    await assert.rejects(() => readLabelledFolder(join(dir, 'cat')), /two class subfolders/);
  });
});
