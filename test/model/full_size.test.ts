import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import { parseConfig } from '../../src/model/config.js';
import { SiglipModel } from '../../src/model/siglip_model.js';
import { checkpointWeights, countParameters } from '../../src/model/weight_map.js';
import { useTestBackend } from '../helpers/backend.js';
import { fixture } from '../helpers/fixtures.js';

const MODELS = [
  ['siglip2-so400m-patch16-256', 1_135_670_962],
  ['siglip2-base-patch16-224', 375_187_970],
] as const;

function read(name: string, file: string): unknown {
  return JSON.parse(readFileSync(fixture('full_size_configs', name, file), 'utf8'));
}

/** state_dict_shapes.json: `{tensors: [{name, shape, dtype}]}`. */
function shapesOf(json: unknown): Map<string, number[]> {
  const { tensors } = json as { tensors: { name: string; shape: number[] }[] };
  return new Map(tensors.map((t) => [t.name, t.shape]));
}

describe('full-size configurations (no weights)', () => {
  before(() => useTestBackend('cpu'));

  for (const [name, params] of MODELS) {
    it(`${name}: the checkpoint names and shapes the reader expects equal state_dict_shapes.json`, () => {
      const config = parseConfig(read(name, 'config.json'));
      const expected = shapesOf(read(name, 'state_dict_shapes.json'));
      const ours = new Map(checkpointWeights(config).map((e) => [e.hfName, e.hfShape]));
      assert.deepEqual([...ours.keys()].sort(), [...expected.keys()].sort());
      for (const [k, shape] of expected) assert.deepEqual(ours.get(k), shape, k);
      assert.equal(countParameters(config), params);
    });

    it(`${name}: the built TF.js model has exactly ${params.toLocaleString('en')} parameters`, function () {
      this.timeout(300_000);
      const config = parseConfig(read(name, 'config.json'));
      // Zero-initialised buffers are not touched, so even so400m stays small in memory.
      const tensorsBefore = tf.memory().numTensors;
      const model = SiglipModel.build(config, { weightInit: 'zeros' });
      try {
        const total = Object.values(model.parts).reduce((n, m) => n + (m?.countParams() ?? 0), 0);
        assert.equal(total, params);
        // Every TF.js weight is one the mapping fills, with the shape the mapping gives.
        const tfShapes = new Map(
          checkpointWeights(config).map((e) => [`${e.tower}:${e.tfName}`, e.tfShape.join(',')]),
        );
        for (const [tower, m] of Object.entries(model.parts)) {
          for (const w of m?.weights ?? []) {
            assert.equal(
              tfShapes.get(`${tower}:${w.originalName}`),
              w.shape.join(','),
              w.originalName,
            );
          }
        }
      } finally {
        model.dispose();
      }
      assert.equal(tf.memory().numTensors, tensorsBefore);
    });
  }
});
