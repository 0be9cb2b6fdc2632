import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { parseConfig } from '../../src/model/config.js';
import type { SiglipInputs, SiglipModel, SiglipOutputs } from '../../src/model/siglip_model.js';
import { Siglip2ImageProcessor } from '../../src/processors/image.js';
import { loadImages } from '../../src/processors/load.js';
import { SiglipPipeline } from '../../src/pipeline/pipeline.js';
import { useTestBackend } from '../helpers/backend.js';
import { fixture } from '../helpers/fixtures.js';
import { fixtureImages } from './helpers.js';

// The NaFlex vision tower is merged separately; this checks what the pipeline hands it: the processor's patches,
// patch mask and spatial shapes, batch by batch. A stand-in model records the inputs.
describe('SiglipPipeline with a NaFlex (siglip2) model: inputs passed to the vision tower', () => {
  before(() => useTestBackend('cpu'));

  it('feeds pixelValues [B, maxNumPatches, 3*p*p], pixelAttentionMask and spatialShapes from the processor', async () => {
    const config = parseConfig(
      JSON.parse(readFileSync(fixture('siglip2_naflex_tiny', 'config.json'), 'utf8')),
    );
    const seen: { pv: number[]; mask: Int32Array; ss: Int32Array }[] = [];
    const fake = {
      config,
      vision: { config: config.visionConfig },
      forward(inputs: SiglipInputs): SiglipOutputs {
        const { pixelValues, pixelAttentionMask, spatialShapes } = inputs;
        assert.ok(pixelValues && pixelAttentionMask && spatialShapes);
        seen.push({
          pv: pixelValues.shape,
          mask: pixelAttentionMask.dataSync() as Int32Array,
          ss: spatialShapes.dataSync() as Int32Array,
        });
        const b = pixelValues.shape[0];
        return {
          imageEmbeds: tf.ones([b, 4]).div(2) as tf.Tensor2D,
          vision: { lastHiddenState: tf.zeros([b, pixelValues.shape[1]!, 4]) },
        };
      },
      dispose() {},
    } as unknown as SiglipModel;
    const pipe = new SiglipPipeline({ model: fake }, { maxNumPatches: 24 });
    assert.ok(pipe.imageProcessor instanceof Siglip2ImageProcessor);
    assert.equal(pipe.imageProcessor.settings.maxNumPatches, 24);
    const images = [
      fixtureImages()[0],
      fixture('image_preprocessing', 'images', 'coffee_portrait.png'),
    ];
    const pf = await pipe.patchFeatures(images, { batchSize: 1 });
    const want = pipe.imageProcessor.preprocess(await loadImages(images));
    assert.deepEqual(pf.dims, [2, 24, 4]);
    assert.deepEqual(pf.grids, [
      [want.spatialShapes[0], want.spatialShapes[1]],
      [want.spatialShapes[2], want.spatialShapes[3]],
    ]);
    assert.notDeepEqual(pf.grids[0], pf.grids[1], 'landscape and portrait get different grids');
    assert.equal(seen.length, 2, 'one forward per batch of 1');
    seen.forEach((s, i) => {
      assert.deepEqual(s.pv, [1, 24, 16 * 16 * 3]);
      assert.deepEqual(
        Array.from(s.mask),
        Array.from(want.pixelAttentionMask.subarray(i * 24, (i + 1) * 24)),
      );
      assert.deepEqual(Array.from(s.ss), Array.from(want.spatialShapes.subarray(2 * i, 2 * i + 2)));
    });
    const e = await pipe.embedImages(images);
    assert.deepEqual(e.dims, [2, 4]);
  });
});

// The real NaFlex tower behind the pipeline: landscape, portrait and grayscale images at their own aspect ratios.
describe('SiglipPipeline with the NaFlex tiny model, end to end', () => {
  before(() => useTestBackend('cpu'));

  it('embeds images of different aspect ratios; each equals the model run on the processor output alone', async () => {
    const { loadHfCheckpoint } = await import('../../src/model/load_hf.js');
    const model = await loadHfCheckpoint(fixture('siglip2_naflex_tiny'));
    const processor = new Siglip2ImageProcessor(
      JSON.parse(
        readFileSync(
          fixture('image_preprocessing', 'siglip2_naflex_256', 'preprocessor_config.json'),
          'utf8',
        ),
      ),
      24,
    );
    const pipe = new SiglipPipeline({ model, imageProcessor: processor });
    const paths = [
      ...fixtureImages(),
      fixture('image_preprocessing', 'images', 'coffee_portrait.png'),
      fixture('image_preprocessing', 'images', 'camera.png'),
    ];
    const tensorsBefore = tf.memory().numTensors;
    const batched = await pipe.embedImages(paths, { batchSize: 4 });
    assert.deepEqual(batched.dims, [4, 48]);
    const images = await loadImages(paths);
    for (let i = 0; i < paths.length; i++) {
      const one = processor.preprocess([images[i]]);
      const p = one.shape[1];
      const feeds = {
        pixelValues: tf.tensor(one.pixelValues, one.shape),
        pixelAttentionMask: tf.tensor(one.pixelAttentionMask, [1, p], 'int32'),
        spatialShapes: tf.tensor(one.spatialShapes, [1, 2], 'int32'),
      };
      const out = model.forward(feeds);
      const want = out.imageEmbeds!.dataSync();
      const got = batched.data.subarray(i * 48, (i + 1) * 48);
      want.forEach((w, j) => assert.ok(Math.abs(w - got[j]) < 1e-5, `image ${i} [${j}]`));
      tf.dispose([out.imageEmbeds!, out.vision!.lastHiddenState, out.vision!.poolerOutput!]);
      tf.dispose(Object.values(feeds));
    }
    assert.equal(tf.memory().numTensors, tensorsBefore, 'the pipeline leaks no tensors');
    pipe.dispose();
  });
});
