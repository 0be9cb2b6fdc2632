import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkImagePreprocessingFixture } from '../../src/check/image_fixture.js';
import { checkTokenizerFixture } from '../../src/check/tokenizer_fixture.js';
import {
  Siglip2ImageProcessor,
  SiglipImageProcessor,
  imageFromCanvasSource,
  imageFromImageData,
  imageFromTensor,
  loadImage,
  loadImageNode,
  loadImages,
} from '../../src/processors/index.js';

const tmp = mkdtempSync(join(tmpdir(), 'siglip2-bad-'));

describe('bad image input gets a clear error naming it', () => {
  it('missing file', async () => {
    await assert.rejects(loadImageNode(join(tmp, 'nope.png')), /nope\.png: cannot read image file/);
  });

  it('a text file, an empty file, a truncated PNG', async () => {
    const txt = join(tmp, 'notes.txt');
    writeFileSync(txt, 'this is not an image');
    await assert.rejects(loadImageNode(txt), /notes\.txt: cannot decode image/);
    const empty = join(tmp, 'empty.jpg');
    writeFileSync(empty, '');
    await assert.rejects(loadImageNode(empty), /empty\.jpg: file is empty/);
    const png = Buffer.from(
      'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==',
      'base64',
    );
    const cut = join(tmp, 'cut.png');
    writeFileSync(cut, png.subarray(0, 40));
    await assert.rejects(loadImageNode(cut), /cut\.png: cannot decode image/);
    await assert.rejects(loadImages(['ok-is-not-here.png']), /ok-is-not-here\.png/);
    await assert.rejects(
      loadImage(new Uint8Array([1, 2, 3]), 'images[2]'),
      /images\[2\]: cannot decode image/,
    );
  });

  it('zero-size and inconsistent decoded images', () => {
    const proc = new SiglipImageProcessor({ size: { height: 32, width: 32 } });
    assert.throws(
      () =>
        proc.preprocess([{ data: new Uint8Array(0), width: 0, height: 4, source: 'blank.png' }]),
      /blank\.png: image is 0x4/,
    );
    assert.throws(
      () =>
        proc.preprocess([
          { data: new Uint8Array(12), width: 2, height: 2 },
          { data: new Uint8Array(5), width: 2, height: 2 },
        ]),
      /images\[1\]: expected 2x2x3 = 12 RGB bytes, got 5/,
    );
    assert.throws(() => proc.preprocess([]), /non-empty array/);
    assert.throws(
      () => imageFromImageData({ data: new Uint8ClampedArray(7), width: 2, height: 1 }, 'frame'),
      /frame: expected 2x1x4 = 8 RGBA bytes, got 7/,
    );
    assert.throws(
      () => imageFromImageData({ data: new Uint8ClampedArray(0), width: 0, height: 0 }),
      /ImageData: image is 0x0/,
    );
  });

  it('tensors of the wrong shape or with float values', async () => {
    assert.throws(
      () => imageFromTensor({ shape: [3, 4, 4, 3], data: [] }, 'pic'),
      /pic: expected an \[H, W, 3\] uint8 image tensor, got shape \[3, 4, 4, 3\]/,
    );
    assert.throws(
      () => imageFromTensor({ shape: [1, 1, 3], data: [0.5, 0.2, 0.1] }),
      /value 0.5 .* not an integer in 0\.\.255/,
    );
    await assert.rejects(
      loadImage({ shape: [0, 4, 3], data: [] }, 'images[0]'),
      /images\[0\]: image is 4x0/,
    );
  });

  it('canvas sources need a browser', () => {
    assert.throws(
      () =>
        imageFromCanvasSource({ width: 4, height: 4 } as unknown as CanvasImageSource, 'img#cat'),
      /img#cat: no canvas in this environment/,
    );
    assert.throws(
      () => imageFromCanvasSource({ width: 0, height: 0 } as unknown as CanvasImageSource),
      /size 0x0 \(not loaded yet/,
    );
  });

  it('bad preprocessor settings', () => {
    assert.throws(() => new SiglipImageProcessor({ resample: 3 }), /resample 3 is not supported/);
    assert.throws(
      () => new SiglipImageProcessor({ size: { height: 0, width: 4 } }),
      /size\.height must be a positive integer/,
    );
    assert.throws(
      () => new SiglipImageProcessor({ image_std: [0.5, 0, 0.5] }),
      /image_std contains 0/,
    );
    assert.throws(
      () => new SiglipImageProcessor({ image_mean: [0.5, 0.5] }),
      /image_mean must be a number or 3 numbers/,
    );
    assert.throws(
      () => new Siglip2ImageProcessor({}, 0),
      /maxNumPatches must be a positive integer, got 0/,
    );
  });

  it('fixture checks reject folders of the wrong kind', async () => {
    await assert.rejects(checkImagePreprocessingFixture(tmp), /not an image preprocessing fixture/);
    await assert.rejects(checkTokenizerFixture(tmp), /not a tokenizer fixture/);
  });
});

describe('preprocessor config loading', () => {
  it('picks the processor kind from the fixture configs and names unreadable configs', async () => {
    const { fixture } = await import('../helpers/fixtures.js');
    const { createImageProcessor, loadPreprocessorConfig } =
      await import('../../src/processors/index.js');
    const naflex = createImageProcessor(
      await loadPreprocessorConfig(fixture('image_preprocessing', 'siglip2_naflex_256')),
    );
    assert.ok(naflex instanceof Siglip2ImageProcessor);
    assert.equal(naflex.settings.maxNumPatches, 256);
    assert.equal(
      (
        createImageProcessor(
          await loadPreprocessorConfig(fixture('image_preprocessing', 'siglip2_naflex_256')),
          { maxNumPatches: 64 },
        ) as Siglip2ImageProcessor
      ).settings.maxNumPatches,
      64,
    );
    const fixed = createImageProcessor(
      await loadPreprocessorConfig(fixture('image_preprocessing', 'siglip_fixres_256')),
    );
    assert.ok(fixed instanceof SiglipImageProcessor);
    assert.equal(fixed.settings.height, 256);
    await assert.rejects(
      loadPreprocessorConfig(tmp),
      /preprocessor_config\.json: cannot read preprocessor config/,
    );
    writeFileSync(join(tmp, 'preprocessor_config.json'), '[1]');
    await assert.rejects(loadPreprocessorConfig(tmp), /not a JSON object/);
  });
});
