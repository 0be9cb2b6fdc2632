import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import {
  SiglipVisionModel,
  checkpointWeights,
  countParameters,
  parseConfig,
} from '../../src/model/index.js';
import { fixture } from '../helpers/fixtures.js';

const DIR = ['full_size_configs', 'siglip2-so400m-patch16-naflex'];

interface StateDictShapes {
  num_parameters: number;
  num_tensors: number;
  tensors: { name: string; shape: number[] }[];
}

function readJson<T>(...parts: string[]): T {
  return JSON.parse(readFileSync(fixture(...DIR, ...parts), 'utf8')) as T;
}

describe('NaFlex full size: google/siglip2-so400m-patch16-naflex', function () {
  this.timeout(60000);
  const config = parseConfig(readJson<unknown>('config.json'));
  const shapes = readJson<StateDictShapes>('state_dict_shapes.json');
  before(async () => {
    await tf.setBackend('cpu');
    await tf.ready();
  });

  it('parses as a NaFlex config with the 16x16 position grid', () => {
    assert.equal(config.modelType, 'siglip2');
    assert.equal(config.visionConfig?.modelType, 'siglip2_vision_model');
    if (config.visionConfig?.modelType === 'siglip2_vision_model') {
      assert.equal(config.visionConfig.numPatches, 256);
    }
  });

  it('checkpointWeights names and shapes equal the state_dict exactly', () => {
    const ours = new Map(checkpointWeights(config).map((e) => [e.hfName, e.hfShape]));
    const theirs = new Map(shapes.tensors.map((t) => [t.name, t.shape]));
    assert.equal(theirs.size, shapes.num_tensors);
    assert.deepEqual([...ours.keys()].sort(), [...theirs.keys()].sort());
    for (const [name, shape] of theirs) assert.deepEqual(ours.get(name), shape, name);
    assert.equal(ours.get('vision_model.embeddings.patch_embedding.weight')?.join(), '1152,768');
  });

  it('has 1,135,670,962 parameters', () => {
    assert.equal(shapes.num_parameters, 1135670962);
    assert.equal(countParameters(config), 1135670962);
  });

  it('the built vision tower (zeros) holds exactly the vision parameters of the checkpoint', () => {
    const vc = config.visionConfig;
    assert.ok(vc);
    const expected = shapes.tensors
      .filter((t) => t.name.startsWith('vision_model.'))
      .reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
    const before = tf.memory().numTensors;
    const vision = SiglipVisionModel.build(vc, { weightInit: 'zeros' });
    try {
      assert.equal(vision.model.countParams(), expected);
      assert.equal(expected, 427888064);
      const names = new Set(vision.model.weights.map((w) => w.originalName));
      for (const e of checkpointWeights(config).filter((w) => w.tower === 'vision')) {
        assert.ok(names.has(e.tfName), `no TF.js weight ${e.tfName} for ${e.hfName}`);
      }
    } finally {
      vision.dispose();
    }
    assert.equal(tf.memory().numTensors, before);
  });
});
