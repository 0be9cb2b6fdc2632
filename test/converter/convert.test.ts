import * as tf from '@tensorflow/tfjs';
import { strict as assert } from 'node:assert';
import { existsSync, promises as fsp, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { convertCheckpoint } from '../../converter/convert.js';
import { convToHwio, transpose2d } from '../../converter/layout.js';
import { encodeFloat16, float32ToFloat16Bits, quantizeUint8 } from '../../converter/quantize.js';
import { resolveSource } from '../../converter/source.js';
import '../../src/index.js';
import { compareArrays, formatComparisons } from '../../src/check/compare.js';
import { readCases, toleranceOf } from '../../src/check/fixture.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { toTensor } from '../../src/check/model_fixture.js';
import { parseHiddenAct } from '../../src/layers/index.js';
import { loadSiglip, type StorageDtype } from '../../src/loader/index.js';
import { IntegrityError } from '../../src/util/errors.js';
import { fixture } from '../helpers/fixtures.js';
import { compareWithFixture, maxAbs, tempDir } from './helpers.js';

const TINY = () => fixture('siglip_tiny');
/** Small shards so that weights span shard boundaries. */
const SHARD = 64 * 1024;

/**
 * Largest |error| against the fixture outputs that each storage dtype may add. Measured on siglip_tiny (cpu
 * backend): float16 3.2e-3 (vision.last_hidden_state), uint8 7.7e-2 (text.last_hidden_state); outputs are O(1).
 */
const BOUNDS: Record<Exclude<StorageDtype, 'float32'>, number> = { float16: 5e-3, uint8: 0.1 };

describe('converter: siglip_tiny round trip', function () {
  const dirs = new Map<StorageDtype, string>();
  let root: string;

  before(async function () {
    root = tempDir('convert');
    for (const dtype of ['float32', 'float16', 'uint8'] as const) {
      const out = join(root, dtype);
      await convertCheckpoint(TINY(), out, { dtype, shardBytes: SHARD });
      dirs.set(dtype, out);
    }
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('writes one LayersModel per tower, the manifest and the processor files', async function () {
    const dir = dirs.get('float32')!;
    const manifest = JSON.parse(readFileSync(join(dir, 'siglip.json'), 'utf8'));
    assert.equal(manifest.format, 'siglip2-tfjs');
    assert.equal(manifest.dtype, 'float32');
    assert.equal(manifest.converter.version, '0.1.0');
    assert.deepEqual(Object.keys(manifest.towers).sort(), ['scores', 'text', 'vision']);
    assert.ok(existsSync(join(dir, 'preprocessor_config.json')));
    assert.ok(existsSync(join(dir, 'config.json')));
    // Parameter counts from the fixture's checkpoint, tensor by tensor.
    const ckpt = await readSafetensors(join(TINY(), 'model.safetensors'));
    const count = (prefix: string) =>
      [...ckpt.values()]
        .filter((t) => t.name.startsWith(prefix))
        .reduce((s, t) => s + t.data.length, 0);
    assert.equal(manifest.towers.vision.parameters, count('vision_model.'));
    assert.equal(manifest.towers.text.parameters, count('text_model.'));
    assert.equal(manifest.towers.scores.parameters, 2);
    // Every shard but the last is exactly the shard size.
    const model = JSON.parse(readFileSync(join(dir, 'vision/model.json'), 'utf8'));
    const paths: string[] = model.weightsManifest[0].paths;
    assert.ok(paths.length > 1);
    const sizes = paths.map((p) => readFileSync(join(dir, 'vision', p)).byteLength);
    assert.ok(sizes.slice(0, -1).every((s) => s === SHARD));
    assert.equal(
      sizes.reduce((a, b) => a + b, 0),
      4 * count('vision_model.'),
    );
  });

  it('float16 and uint8 shrink the shards as TF.js quantization does', function () {
    const size = (d: StorageDtype, t: string) =>
      JSON.parse(readFileSync(join(dirs.get(d)!, 'siglip.json'), 'utf8')).towers[t];
    for (const t of ['vision', 'text']) {
      const f32 = size('float32', t);
      assert.equal(size('float16', t).weightBytes, 2 * f32.parameters);
      // uint8 keeps 1-D tensors (biases, LayerNorm) in float32.
      const u8 = size('uint8', t).weightBytes;
      assert.ok(u8 > f32.parameters && u8 < 0.3 * f32.weightBytes, `${t}: ${u8}`);
    }
  });

  it('float32 artifacts reproduce the fixture outputs within its tolerance', async function () {
    const tolerance = toleranceOf(await readCases(TINY()));
    const model = await loadSiglip(dirs.get('float32')!);
    try {
      const rows = await compareWithFixture(model, tolerance);
      assert.equal(rows.length, 8);
      assert.ok(
        rows.every((r) => r.ok),
        formatComparisons(rows),
      );
      assert.deepEqual(model.processor.preprocessorConfig?.size, { height: 64, width: 64 });
      assert.ok(
        model.processor.files['preprocessor_config.json'].endsWith('preprocessor_config.json'),
      );
    } finally {
      model.dispose();
    }
  });

  for (const dtype of ['float16', 'uint8'] as const) {
    it(`${dtype} artifacts stay within ${BOUNDS[dtype]} of the fixture outputs`, async function () {
      const model = await loadSiglip(pathToFileURL(dirs.get(dtype)!).href);
      try {
        const rows = await compareWithFixture(model, { atol: BOUNDS[dtype], rtol: 0 });
        assert.ok(
          rows.every((r) => r.ok),
          formatComparisons(rows),
        );
        // Quantization really happened: the error is well above float32 rounding.
        assert.ok(maxAbs(rows) > 1e-4, `max error ${maxAbs(rows)}`);
      } finally {
        model.dispose();
      }
    });
  }

  it('towers: "vision" loads only the vision tower', async function () {
    const model = await loadSiglip(dirs.get('float32')!, { towers: 'vision' });
    try {
      assert.ok(model.vision && !model.text && !model.scores);
      const tolerance = toleranceOf(await readCases(TINY()));
      const rows = await compareWithFixture(model, tolerance);
      assert.deepEqual(
        rows.map((r) => r.name),
        ['image_embeds', 'vision.last_hidden_state', 'vision.pooler_output'],
      );
      assert.ok(
        rows.every((r) => r.ok),
        formatComparisons(rows),
      );
    } finally {
      model.dispose();
    }
  });

  for (const dtype of ['float32', 'uint8'] as const) {
    it(`plain tf.loadLayersModel reads the ${dtype} vision and text towers`, async function () {
      const dir = dirs.get(dtype)!;
      const inputs = await readSafetensors(fixture('siglip_tiny', 'inputs.safetensors'));
      const expected = await readSafetensors(fixture('siglip_tiny', 'outputs.safetensors'));
      const tol =
        dtype === 'float32'
          ? toleranceOf(await readCases(TINY()))
          : { atol: BOUNDS[dtype], rtol: 0 };
      const vision = await tf.loadLayersModel(join(dir, 'vision', 'model.json'));
      const text = await tf.loadLayersModel(pathToFileURL(join(dir, 'text', 'model.json')).href);
      const pixels = toTensor(inputs.get('pixel_values')!);
      const ids = toTensor(inputs.get('input_ids')!);
      const [vLast, vPool] = vision.predict(pixels) as tf.Tensor[];
      const [tLast, tPool] = text.predict(ids) as tf.Tensor[];
      try {
        const rows = (
          [
            ['vision.last_hidden_state', vLast],
            ['vision.pooler_output', vPool],
            ['text.last_hidden_state', tLast],
            ['text.pooler_output', tPool],
          ] as const
        ).map(([name, t]) => {
          const g = expected.get(name)!;
          return compareArrays(name, t.dataSync(), g.data, g.shape, tol, t.shape);
        });
        assert.ok(
          rows.every((r) => r.ok),
          formatComparisons(rows),
        );
      } finally {
        tf.dispose([pixels, ids, vLast, vPool, tLast, tPool]);
        vision.dispose();
        text.dispose();
      }
    });
  }

  it('streams large tensors in pieces with the same result', async function () {
    for (const dtype of ['float16', 'uint8'] as const) {
      const out = join(root, `chunked-${dtype}`);
      // The 1000x48 token table is above 5000 elements and needs no transpose: streamed in 10 pieces.
      await convertCheckpoint(TINY(), out, { dtype, shardBytes: SHARD, chunkElements: 5000 });
      for (const t of ['text', 'vision']) {
        const a = readdirSync(join(out, t)).filter((f) => f.endsWith('.bin'));
        for (const f of a) {
          assert.ok(
            readFileSync(join(out, t, f)).equals(readFileSync(join(dirs.get(dtype)!, t, f))),
            `${dtype} ${t}/${f} differs`,
          );
        }
        const m1 = JSON.parse(readFileSync(join(out, t, 'model.json'), 'utf8'));
        const m2 = JSON.parse(readFileSync(join(dirs.get(dtype)!, t, 'model.json'), 'utf8'));
        assert.deepEqual(m1.weightsManifest, m2.weightsManifest);
      }
    }
  });

  it('loads over http(s) with progress, and names the URL on a 404', async function () {
    const dir = dirs.get('float16')!;
    const server: Server = createServer((req, res) => {
      const rel = decodeURIComponent((req.url ?? '/').replace(/^\/m\//, ''));
      const path = join(dir, rel);
      if (!req.url?.startsWith('/m/') || rel.includes('..') || !existsSync(path)) {
        res.writeHead(404).end('not found');
        return;
      }
      res.writeHead(200).end(readFileSync(path));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const fractions: number[] = [];
      const model = await loadSiglip(`${base}/m/siglip.json`, {
        towers: 'text',
        onProgress: (p) => fractions.push(p.fraction),
      });
      try {
        const rows = await compareWithFixture(model, { atol: BOUNDS.float16, rtol: 0 });
        assert.ok(rows.length === 3 && rows.every((r) => r.ok), formatComparisons(rows));
        assert.equal(fractions[fractions.length - 1], 1);
        assert.ok(fractions.every((f, i) => i === 0 || f >= fractions[i - 1]));
        assert.ok(model.processor.files['config.json'].startsWith(`${base}/m/`));
      } finally {
        model.dispose();
      }
      await assert.rejects(
        loadSiglip(`${base}/nothing-here`),
        /http:\/\/127\.0\.0\.1:\d+\/nothing-here\/siglip\.json: HTTP 404/,
      );
    } finally {
      server.close();
    }
  });
});

describe('converter: bad input gives clear errors', function () {
  let root: string;
  let good: string;
  before(async function () {
    root = tempDir('bad');
    good = join(root, 'good');
    await convertCheckpoint(TINY(), good, { shardBytes: SHARD });
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  async function copy(name: string): Promise<string> {
    const dir = join(root, name);
    await fsp.cp(good, dir, { recursive: true });
    return dir;
  }

  it('a truncated shard', async function () {
    const dir = await copy('truncated');
    const shard = join(dir, 'vision', 'group1-shard2of7.bin');
    const bytes = readFileSync(shard);
    await fsp.writeFile(shard, bytes.subarray(0, 1000));
    await assert.rejects(
      loadSiglip(dir),
      (e: Error) =>
        e instanceof IntegrityError &&
        e.message.includes('group1-shard2of7.bin') &&
        /SHA-256 mismatch.*\(1000 bytes, siglip\.json records 65536/.test(e.message),
    );
    // Without verification, the shard-size check still names the file.
    await assert.rejects(
      loadSiglip(dir, { verify: false }),
      (e: Error) =>
        e.message.includes('group1-shard2of7.bin') &&
        /shard is 1000 bytes, expected 65536 \(truncated/.test(e.message),
    );
    await assert.rejects(
      tf.loadLayersModel(join(dir, 'vision', 'model.json')),
      (e: Error) => e.message.includes('group1-shard2of7.bin') && /truncated/.test(e.message),
    );
  });

  it('a missing shard', async function () {
    const dir = await copy('missing');
    await fsp.rm(join(dir, 'text', 'group1-shard3of6.bin'));
    const re = /text[/\\]group1-shard3of6\.bin: missing file/;
    await assert.rejects(loadSiglip(dir), (e: Error) => re.test(e.message));
    await assert.rejects(tf.loadLayersModel(join(dir, 'text', 'model.json')), (e: Error) =>
      re.test(e.message),
    );
  });

  it('a weights manifest that does not match the topology', async function () {
    const edit = async (name: string, change: (w: { name: string; shape: number[] }[]) => void) => {
      const dir = await copy(name);
      const path = join(dir, 'vision', 'model.json');
      const json = JSON.parse(readFileSync(path, 'utf8'));
      change(json.weightsManifest[0].weights);
      await fsp.writeFile(path, JSON.stringify(json));
      return dir;
    };
    const renamed = await edit('renamed', (w) => {
      w[0].name = 'embeddings/patch_embedding/kernelX';
    });
    await assert.rejects(
      loadSiglip(renamed, { verify: false }),
      /vision[/\\]model\.json: weightsManifest lists weight 'embeddings\/patch_embedding\/kernelX', which the configuration does not have/,
    );
    const reshaped = await edit('reshaped', (w) => {
      const e = w.find((x) => x.name === 'post_layernorm/gamma')!;
      e.shape = [24, 2];
    });
    await assert.rejects(
      tf.loadLayersModel(join(reshaped, 'vision', 'model.json')),
      /weight 'post_layernorm\/gamma' has shape \[24, 2\] in weightsManifest, the model topology needs \[48\]/,
    );
    const dropped = await edit('dropped', (w) => {
      w.splice(
        w.findIndex((x) => x.name === 'head/probe'),
        1,
      );
    });
    await assert.rejects(loadSiglip(dropped), IntegrityError);
    await assert.rejects(
      loadSiglip(dropped, { verify: false }),
      /weightsManifest lacks 1 weight\(s\).*head\/probe/,
    );
  });

  it('a missing or foreign siglip.json', async function () {
    await assert.rejects(loadSiglip(join(root, 'nowhere')), /siglip\.json: missing file/);
    const dir = await copy('foreign');
    await fsp.writeFile(join(dir, 'siglip.json'), '{"format": "other"}');
    await assert.rejects(loadSiglip(dir), /format is "other", expected "siglip2-tfjs"/);
  });

  it('converter input: missing tensor, wrong shape, non-empty output folder', async function () {
    const ckpt = await readSafetensors(join(TINY(), 'model.safetensors'));
    const { encodeSafetensors } = await import('../../src/io/safetensors.js');
    const write = async (name: string, edit: (t: { name: string; shape: number[] }[]) => void) => {
      const dir = join(root, name);
      await fsp.mkdir(dir);
      await fsp.copyFile(join(TINY(), 'config.json'), join(dir, 'config.json'));
      const tensors = [...ckpt.values()].map((t) => ({ ...t, dtype: undefined }));
      edit(tensors);
      await fsp.writeFile(join(dir, 'model.safetensors'), encodeSafetensors(tensors));
      return dir;
    };
    const lacking = await write('lacking', (t) =>
      t.splice(
        t.findIndex((x) => x.name === 'text_model.head.bias'),
        1,
      ),
    );
    await assert.rejects(
      convertCheckpoint(lacking, join(root, 'out1')),
      /lacks 1 tensor\(s\) the configuration needs: text_model\.head\.bias/,
    );
    await assert.rejects(convertCheckpoint(TINY(), good), /folder is not empty \(pass --overwrite/);
    await assert.rejects(
      convertCheckpoint(TINY(), join(root, 'x'), { dtype: 'int4' as StorageDtype }),
      /dtype "int4"/,
    );
  });

  it('a hub repo id: the resolver error (e.g. a 404) comes through; bad ids are refused', async function () {
    const hub404 = async (repo: string) => {
      throw new Error(`https://huggingface.co/${repo}: HTTP 404 (repository not found)`);
    };
    await assert.rejects(
      resolveSource('google/no-such-model', { hub: hub404 }),
      /google\/no-such-model: HTTP 404/,
    );
    await assert.rejects(resolveSource('not a repo'), /no such folder, and not a hub repo id/);
    const ok = await resolveSource('org/name', {
      hub: async () => ({ dir: TINY(), revision: 'abc' }),
    });
    assert.deepEqual(ok, { dir: TINY(), repo: 'org/name', revision: 'abc' });
  });
});

describe('converter: number formats and layouts', function () {
  it('float16 encoding rounds to nearest even, with subnormals, overflow and NaN', function () {
    const cases: [number, number][] = [
      [1, 0x3c00],
      [-2, 0xc000],
      [0.1, 0x2e66],
      [65504, 0x7bff],
      [65520, 0x7c00], // rounds up to Inf
      [65519, 0x7bff],
      [2 ** -24, 0x0001], // smallest subnormal
      [2 ** -25, 0x0000], // halfway to 0: ties to even
      [3 * 2 ** -25, 0x0002], // halfway between 1 and 2 subnormal steps: even
      [2 ** -14, 0x0400], // smallest normal
      [1 + 2 ** -11, 0x3c00], // tie: even mantissa
      [1 + 3 * 2 ** -11, 0x3c02],
      [-0, 0x8000],
      [Infinity, 0x7c00],
    ];
    for (const [x, bits] of cases) {
      assert.equal(float32ToFloat16Bits(x), bits, `${x}`);
    }
    assert.equal(float32ToFloat16Bits(NaN) & 0x7c00, 0x7c00);
    assert.ok((float32ToFloat16Bits(NaN) & 0x3ff) !== 0);
  });

  it('TF.js decodes our float16 and uint8 encodings to within half a step', function () {
    const values = new Float32Array(4096);
    for (let i = 0; i < values.length; i++) values[i] = Math.sin(i * 12.9898) * 3 + 0.5;
    const f16 = encodeFloat16(values);
    const back16 = tf.io.decodeWeights(f16.buffer as ArrayBuffer, [
      { name: 'w', shape: [4096], dtype: 'float32', quantization: { dtype: 'float16' } },
    ]).w;
    const d16 = back16.dataSync();
    for (let i = 0; i < values.length; i++) {
      assert.ok(Math.abs(d16[i] - values[i]) <= Math.abs(values[i]) * 2 ** -11 + 1e-7, `${i}`);
    }
    const { bytes, min, scale } = quantizeUint8(values);
    const back8 = tf.io.decodeWeights(bytes.buffer as ArrayBuffer, [
      { name: 'w', shape: [4096], dtype: 'float32', quantization: { dtype: 'uint8', min, scale } },
    ]).w;
    const d8 = back8.dataSync();
    for (let i = 0; i < values.length; i++) {
      assert.ok(Math.abs(d8[i] - values[i]) <= scale / 2 + 1e-6, `${i}`);
    }
    // Zero is exactly representable.
    assert.equal(Math.round(-min / scale) * scale + min, 0);
    tf.dispose([back16, back8]);
  });

  it('transpose and conv permutations match tf.transpose', function () {
    const a = tf.randomNormal([70, 130]);
    const got = transpose2d(a.dataSync() as Float32Array, 70, 130);
    const want = tf.transpose(a);
    assert.deepEqual(Array.from(got), Array.from(want.dataSync()));
    const k = tf.randomNormal([5, 3, 4, 2]);
    const gotK = convToHwio(k.dataSync() as Float32Array, [5, 3, 4, 2]);
    const wantK = tf.transpose(k, [2, 3, 1, 0]);
    assert.deepEqual(Array.from(gotK), Array.from(wantK.dataSync()));
    tf.dispose([a, want, k, wantK]);
  });

  it('activation names survive tf.serialization camel-casing', function () {
    assert.equal(parseHiddenAct('geluPytorchTanh'), 'gelu_pytorch_tanh');
    assert.equal(parseHiddenAct('quick_gelu'), 'quick_gelu');
    assert.throws(() => parseHiddenAct('relu'), /unsupported activation 'relu'/);
  });
});
