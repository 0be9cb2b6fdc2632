// One test per reader bug found by the fuzzer (bench/fuzz) or while hardening the readers for it. Each input
// crashed (TypeError), hung, or loaded the wrong tensors before; now it is refused with a typed error naming the
// file and field.
import { strict as assert } from 'node:assert';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { convertCheckpoint } from '../../converter/convert.js';
import { SafetensorsFile } from '../../src/io/safetensors.js';
import { loadSiglip, parseManifest, parseModelJson } from '../../src/loader/index.js';
import '../../src/loader/node.js';
import { CheckpointReader } from '../../src/model/checkpoint.js';
import { parseConfig } from '../../src/model/config.js';
import { readConfig } from '../../src/model/load_hf.js';
import { ArtifactFormatError, ConfigError, SafetensorsFormatError } from '../../src/util/errors.js';
import { joinSafetensors, splitSafetensors } from '../../bench/fuzz/mutate.js';
import { tempDir } from '../converter/helpers.js';
import { useTestBackend } from '../helpers/backend.js';
import { fixture } from '../helpers/fixtures.js';

function typed<T extends Error>(
  cls: new (...args: never[]) => T,
  message: RegExp,
  check: (e: T) => void = () => undefined,
) {
  return (e: unknown) => {
    assert.ok(e instanceof cls, `${(e as Error).name}: ${(e as Error).message}`);
    assert.match(e.message, message);
    check(e);
    return true;
  };
}

describe('reader regressions found by fuzzing', function () {
  let root: string;
  let tiny: Uint8Array;
  before(() => {
    root = tempDir('regress');
    tiny = new Uint8Array(readFileSync(fixture('siglip_tiny', 'model.safetensors')));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  const write = (name: string, bytes: Uint8Array | string) => {
    const path = join(root, name);
    writeFileSync(path, bytes);
    return path;
  };

  it('a header length one short of the padded header (data shifted by a byte) is refused', async function () {
    // Found by the fuzzer: the header's trailing padding space made the JSON still valid, and every tensor was
    // read one byte early.
    const out = tiny.slice();
    const view = new DataView(out.buffer);
    view.setBigUint64(0, view.getBigUint64(0, true) - 1n, true);
    await assert.rejects(
      SafetensorsFile.open(write('short-header.safetensors', out)),
      typed(
        SafetensorsFormatError,
        /short-header\.safetensors: the tensors cover \d+ bytes of the \d+-byte data/,
      ),
    );
  });

  it('bytes after the data, or a hole between tensors, are refused', async function () {
    const extra = new Uint8Array(tiny.length + 3);
    extra.set(tiny);
    await assert.rejects(
      SafetensorsFile.open(write('trailing.safetensors', extra)),
      typed(SafetensorsFormatError, /trailing\.safetensors: the tensors cover/),
    );
    const holed = {
      a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
      b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] },
    };
    await assert.rejects(
      SafetensorsFile.open(write('hole.safetensors', joinSafetensors(holed, new Uint8Array(12)))),
      typed(
        SafetensorsFormatError,
        /bytes \[4, 8\) of the data section belong to no tensor \(before 'b'\)/,
      ),
    );
  });

  it('__metadata__ that is not an object of strings is refused', async function () {
    const { header, data } = splitSafetensors(tiny);
    header.__metadata__ = 5;
    await assert.rejects(
      SafetensorsFile.open(write('meta.safetensors', joinSafetensors(header, data))),
      typed(SafetensorsFormatError, /__metadata__ must be an object of strings/, (e) =>
        assert.equal(e.field, '__metadata__'),
      ),
    );
  });

  it('a shard index that is null, or names a shard with a number, is refused (was a TypeError)', async function () {
    for (const [name, index] of [
      ['null', 'null'],
      ['number', JSON.stringify({ weight_map: { 'text_model.head.bias': 7 } })],
      ['array', JSON.stringify({ weight_map: ['a'] })],
    ]) {
      const dir = join(root, `index-${name}`);
      mkdirSync(dir);
      writeFileSync(join(dir, 'model.safetensors.index.json'), index);
      await assert.rejects(
        CheckpointReader.open(dir),
        typed(SafetensorsFormatError, /model\.safetensors\.index\.json: /),
        name,
      );
    }
  });

  it('config.json that is not JSON is a ConfigError (was a plain Error the fuzzer flagged)', async function () {
    const dir = join(root, 'badconfig');
    mkdirSync(dir);
    writeFileSync(join(dir, 'config.json'), '{"model_type": "sig');
    await assert.rejects(readConfig(dir), typed(ConfigError, /config\.json: not valid JSON/));
  });

  it('absurd sizes in config.json are refused before anything is sized from them', function () {
    // 1e9 layers made checkpointWeights list billions of entries (a hang, then out of memory).
    assert.throws(
      () => parseConfig({ model_type: 'siglip', text_config: { num_hidden_layers: 1e9 } }),
      typed(
        ConfigError,
        /text_config\.num_hidden_layers must be an integer in \[1, 1024\], got 1000000000/,
        (e) => assert.equal(e.field, 'num_hidden_layers'),
      ),
    );
    assert.throws(
      () => parseConfig({ model_type: 'siglip', vision_config: { hidden_size: 2 ** 40 } }),
      ConfigError,
    );
  });

  it('siglip.json: non-string files, an escaping modelJson path, a non-numeric size are refused (files: [1] was a TypeError)', function () {
    const good = {
      format: 'siglip2-tfjs',
      formatVersion: 1,
      dtype: 'float32',
      shardBytes: 65536,
      towers: {
        vision: { modelJson: 'vision/model.json', weightBytes: 4, shards: 1, parameters: 1 },
      },
      config: { model_type: 'siglip' },
      files: ['config.json'],
    };
    assert.doesNotThrow(() => parseManifest(good, 'siglip.json'));
    const bad: [string, Record<string, unknown>, RegExp][] = [
      ['files', { files: [1] }, /files is not a list of relative paths/],
      [
        'modelJson',
        { towers: { vision: { ...good.towers.vision, modelJson: '../../etc/passwd' } } },
        /tower 'vision' has no modelJson path \(or an unsafe one\)/,
      ],
      [
        'weightBytes',
        { towers: { vision: { ...good.towers.vision, weightBytes: '4' } } },
        /weightBytes "4" is not a non-negative integer/,
      ],
      ['digests', { digests: { 'a.bin': { size: 1, sha256: 'xyz' } } }, /digests\['a\.bin'\]/],
      ['formatVersion', { formatVersion: 'x' }, /formatVersion "x" is not a version number/],
    ];
    for (const [what, change, message] of bad) {
      assert.throws(
        () => parseManifest({ ...good, ...change }, 'siglip.json'),
        typed(ArtifactFormatError, message),
        what,
      );
    }
  });

  it('model.json: a weight without a shape, or uint8 quantization without a scale, is refused (was a TypeError)', function () {
    const json = (weights: unknown[]) => ({
      modelTopology: {},
      weightsManifest: [{ paths: ['group1-shard1of1.bin'], weights }],
    });
    assert.throws(
      () => parseModelJson(json([{ name: 'w', dtype: 'float32' }]), 'model.json'),
      typed(ArtifactFormatError, /weight 'w': shape undefined is not a valid shape/, (e) =>
        assert.equal(e.field, 'weightsManifest.w.shape'),
      ),
    );
    assert.throws(
      () =>
        parseModelJson(
          json([
            { name: 'w', dtype: 'float32', shape: [2], quantization: { dtype: 'uint8', min: 0 } },
          ]),
          'model.json',
        ),
      typed(ArtifactFormatError, /uint8 quantization needs finite min and scale/),
    );
    assert.throws(() => parseModelJson(json([null]), 'model.json'), ArtifactFormatError);
    assert.throws(
      () =>
        parseModelJson(
          { modelTopology: {}, weightsManifest: [{ paths: ['../x.bin'], weights: [] }] },
          'model.json',
        ),
      typed(ArtifactFormatError, /are not relative file names/),
    );
  });

  it('a model.json whose layer graph can never be built is refused, not a hang', async function () {
    // Found by the fuzzer: one byte renaming a layer ('post_lay[rnorm') made TF.js's deserializer wait forever
    // for the node a later layer takes from 'post_layernorm'; a cycle did the same.
    this.timeout(60000);
    await useTestBackend('cpu');
    const dir = join(root, 'converted');
    await convertCheckpoint(fixture('siglip_tiny'), dir);
    const path = join(dir, 'vision', 'model.json');
    const original = readFileSync(path, 'utf8');
    interface Layer {
      name: string;
      inbound_nodes: [string, number, number, object][][];
    }
    const edit = (change: (layers: Layer[]) => void) => {
      const json = JSON.parse(original) as { modelTopology: { config: { layers: Layer[] } } };
      change(json.modelTopology.config.layers);
      writeFileSync(path, JSON.stringify(json));
    };
    edit((layers) => (layers.find((l) => l.name === 'post_layernorm')!.name = 'post_lay[rnorm'));
    await assert.rejects(
      loadSiglip(dir, { verify: false, towers: 'vision' }),
      typed(
        ArtifactFormatError,
        /modelTopology: layer '\w+' takes node 0 of 'post_layernorm', which is not a layer/,
      ),
    );
    await assert.rejects(tf.loadLayersModel(path), ArtifactFormatError);
    edit(
      (layers) => (layers.find((l) => l.name === 'embeddings')!.inbound_nodes[0][0][0] = 'encoder'),
    );
    await assert.rejects(
      loadSiglip(dir, { verify: false, towers: 'vision' }),
      typed(ArtifactFormatError, /takes node 0 of '\w+', which is never built \(a cycle/),
    );
    edit((layers) => layers[1].inbound_nodes.push([]));
    await assert.rejects(
      loadSiglip(dir, { verify: false, towers: 'vision' }),
      typed(ArtifactFormatError, /an inbound node is not a non-empty list/),
    );
  });
});
