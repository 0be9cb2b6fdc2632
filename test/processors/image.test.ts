import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { checkImagePreprocessingFixture } from '../../src/check/image_fixture.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import {
  type RgbImage,
  Siglip2ImageProcessor,
  SiglipImageProcessor,
  imageFromImageData,
  loadImage,
  loadImageNode,
  loadImages,
} from '../../src/processors/index.js';
import { fixture } from '../helpers/fixtures.js';

const LEVEL = 2 / 255; // one uint8 step after /255 and std 0.5
const dir = () => fixture('image_preprocessing');
const cfg = (sub: string) =>
  JSON.parse(readFileSync(join(dir(), sub, 'preprocessor_config.json'), 'utf8'));

function maxDiff(a: Float32Array, e: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < e.length; i++) m = Math.max(m, Math.abs(a[i] - e[i]));
  return m;
}

describe('image preprocessing against the HF fixture', function () {
  this.timeout(60000);
  let outputs: Awaited<ReturnType<typeof readSafetensors>>;
  let rocket: RgbImage;
  before(async () => {
    outputs = await readSafetensors(join(dir(), 'outputs.safetensors'));
    const inputs = await readSafetensors(join(dir(), 'inputs.safetensors'));
    const r = inputs.get('rocket.decoded_uint8')!;
    rocket = { data: r.data as Uint8Array, height: r.shape[0], width: r.shape[1] };
  });

  it('checkImagePreprocessingFixture: every output within tolerance; PNG and decoded_uint8 cases exact', async () => {
    const rows = await checkImagePreprocessingFixture(dir());
    assert.equal(rows.length, 35);
    for (const r of rows) {
      assert.ok(r.ok, `${r.name}: ${r.note ?? ''}`);
      if (!r.name.startsWith('rocket.'))
        assert.ok(r.maxAbs <= 1.2e-7, `${r.name}: max abs ${r.maxAbs}`);
    }
  });

  it('sharp decodes rocket.jpg like Pillow 9.4 (mean under 0.5 level)', async () => {
    const img = await loadImageNode(join(dir(), 'images', 'rocket.jpg'));
    assert.equal(img.width, 640);
    assert.equal(img.height, 427);
    let max = 0;
    let sum = 0;
    for (let i = 0; i < img.data.length; i++) {
      const d = Math.abs(img.data[i] - rocket.data[i]);
      max = Math.max(max, d);
      sum += d;
    }
    const mean = sum / img.data.length;
    assert.ok(mean < 0.5, `mean ${mean}, max ${max} levels`);
  });

  it('fixed resolution from decoded_uint8 is exact, and ImageData / tensor inputs give the same numbers', async () => {
    const proc = new SiglipImageProcessor(cfg('siglip_fixres_256'));
    const expected = outputs.get('rocket.fixres256.pixel_values')!;
    const a = proc.preprocess([rocket]);
    assert.deepEqual(a.shape, [1, 3, 256, 256]);
    assert.ok(maxDiff(a.pixelValues, expected.data) <= 1.2e-7);
    const rgba = new Uint8ClampedArray(rocket.width * rocket.height * 4);
    for (let i = 0; i < rocket.width * rocket.height; i++) {
      rgba.set(rocket.data.subarray(3 * i, 3 * i + 3), 4 * i);
      rgba[4 * i + 3] = i % 256; // alpha is dropped, not composited
    }
    const fromImageData = proc.preprocess([
      imageFromImageData({ data: rgba, width: 640, height: 427 }),
    ]);
    assert.ok(maxDiff(fromImageData.pixelValues, expected.data) <= 1.2e-7);
    const tensor = { shape: [427, 640, 3], data: Array.from(rocket.data) };
    const fromTensor = proc.preprocess([await loadImage(tensor)]);
    assert.ok(maxDiff(fromTensor.pixelValues, expected.data) <= 1.2e-7);
    const fromLoad = proc.preprocess([await loadImage({ data: rgba, width: 640, height: 427 })]);
    assert.ok(maxDiff(fromLoad.pixelValues, expected.data) <= 1.2e-7);
  });

  it('NaFlex batch mixing sizes: per-image patches, masks and spatial shapes match the fixture', async () => {
    const proc = new Siglip2ImageProcessor(cfg('siglip2_naflex_256'), 64);
    assert.equal(proc.settings.maxNumPatches, 64);
    const chelsea = await loadImageNode(join(dir(), 'images', 'chelsea.png'));
    const portrait = await loadImageNode(join(dir(), 'images', 'coffee_portrait.png'));
    const b = proc.preprocess([chelsea, rocket, portrait]);
    assert.deepEqual(b.shape, [3, 64, 768]);
    assert.deepEqual([...b.spatialShapes], [6, 10, 7, 9, 9, 6]);
    ['chelsea', 'rocket', 'coffee_portrait'].forEach((name, i) => {
      const pv = outputs.get(`${name}.naflex64.pixel_values`)!;
      const mask = outputs.get(`${name}.naflex64.pixel_attention_mask`)!;
      assert.ok(
        maxDiff(b.pixelValues.subarray(i * 64 * 768, (i + 1) * 64 * 768), pv.data) <= 1.2e-7,
        name,
      );
      assert.deepEqual(
        [...b.pixelAttentionMask.subarray(i * 64, (i + 1) * 64)],
        [...mask.data],
        name,
      );
    });
  });

  it('a fixed-resolution batch may mix sizes: each image is resized on its own', async () => {
    const proc = new SiglipImageProcessor(cfg('siglip_fixres_256'));
    const camera = await loadImageNode(join(dir(), 'images', 'camera.png'));
    const b = proc.preprocess([camera, rocket]);
    assert.deepEqual(b.shape, [2, 3, 256, 256]);
    const per = 3 * 256 * 256;
    assert.ok(
      maxDiff(
        b.pixelValues.subarray(0, per),
        outputs.get('camera.fixres256_rgb.pixel_values')!.data,
      ) <= 1.2e-7,
    );
    assert.ok(
      maxDiff(b.pixelValues.subarray(per), outputs.get('rocket.fixres256.pixel_values')!.data) <=
        1.2e-7,
    );
    assert.ok(LEVEL > 0);
  });
});

describe('image decoding (sharp) conversions', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'siglip2-img-'));
  const w = 5;
  const h = 3;
  const rgb = Uint8Array.from({ length: w * h * 3 }, (_, i) => (i * 37) % 256);

  it('drops alpha without compositing (PIL convert("RGB")) and replicates gray', async () => {
    const rgba = new Uint8Array(w * h * 4);
    for (let i = 0; i < w * h; i++) {
      rgba.set(rgb.subarray(3 * i, 3 * i + 3), 4 * i);
      rgba[4 * i + 3] = 10 + i;
    }
    const png = await sharp(rgba, { raw: { width: w, height: h, channels: 4 } })
      .png()
      .toBuffer();
    const img = await loadImageNode(png, 'rgba.png');
    assert.deepEqual([...img.data], [...rgb]);
    const gray = Uint8Array.from({ length: w * h }, (_, i) => i * 9);
    const gpng = await sharp(gray, { raw: { width: w, height: h, channels: 1 } })
      .png()
      .toBuffer();
    const g = await loadImageNode(gpng);
    assert.deepEqual(
      [...g.data],
      [...gray].flatMap((v) => [v, v, v]),
    );
  });

  it('applies the EXIF orientation (6 = rotate 90 degrees clockwise)', async () => {
    const png = await sharp(rgb, { raw: { width: w, height: h, channels: 3 } })
      .png()
      .withMetadata({ orientation: 6 })
      .toBuffer();
    const img = await loadImageNode(png, 'rotated.png');
    assert.equal(img.width, h);
    assert.equal(img.height, w);
    // rotated 90 cw: out(y=x0, x=h-1-y0) = in(y0, x0)
    for (let y0 = 0; y0 < h; y0++) {
      for (let x0 = 0; x0 < w; x0++) {
        const o = (x0 * h + (h - 1 - y0)) * 3;
        const s = (y0 * w + x0) * 3;
        assert.deepEqual([...img.data.subarray(o, o + 3)], [...rgb.subarray(s, s + 3)]);
      }
    }
  });

  it('reads WebP, GIF (first frame) and TIFF losslessly', async () => {
    const base = sharp(rgb, { raw: { width: w, height: h, channels: 3 } });
    for (const [fmt, buf] of [
      ['webp', await base.clone().webp({ lossless: true }).toBuffer()],
      ['tiff', await base.clone().tiff({ compression: 'lzw' }).toBuffer()],
    ] as const) {
      const img = await loadImageNode(buf, fmt);
      assert.deepEqual([...img.data], [...rgb], fmt);
    }
    const flat = new Uint8Array(w * h * 3).fill(200);
    const gif = await sharp(flat, { raw: { width: w, height: h, channels: 3 } })
      .gif()
      .toBuffer();
    const g = await loadImageNode(gif, 'x.gif');
    assert.equal(g.width, w);
    assert.ok(g.data.every((v) => v === 200));
    const path = join(tmp, 'img.webp');
    writeFileSync(path, await base.clone().webp({ lossless: true }).toBuffer());
    const [fromPath] = await loadImages([path]);
    assert.equal(fromPath.source, path);
    assert.deepEqual([...fromPath.data], [...rgb]);
  });
});
