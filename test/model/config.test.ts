import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseConfig } from '../../src/model/config.js';
import { fixture } from '../helpers/fixtures.js';

function configOf(name: string): unknown {
  return JSON.parse(readFileSync(fixture('full_size_configs', name, 'config.json'), 'utf8'));
}

describe('config.json parsing', () => {
  it('fills the reference defaults for fields the hub file leaves out (base-patch16-224)', () => {
    const c = parseConfig(configOf('siglip2-base-patch16-224'));
    assert.equal(c.modelType, 'siglip');
    assert.equal(c.visionConfig?.modelType, 'siglip_vision_model');
    assert.deepEqual(
      {
        hidden: c.visionConfig?.hiddenSize,
        layers: c.visionConfig?.numHiddenLayers,
        image: c.visionConfig?.modelType === 'siglip_vision_model' ? c.visionConfig.imageSize : 0,
        patch: c.visionConfig?.patchSize,
        head: c.visionConfig?.visionUseHead,
        eps: c.visionConfig?.layerNormEps,
        act: c.visionConfig?.hiddenAct,
      },
      {
        hidden: 768,
        layers: 12,
        image: 224,
        patch: 16,
        head: true,
        eps: 1e-6,
        act: 'gelu_pytorch_tanh',
      },
    );
    assert.equal(c.textConfig?.vocabSize, 256000);
    assert.equal(c.textConfig?.projectionSize, 768, 'projection_size defaults to hidden_size');
    assert.equal(c.textConfig?.maxPositionEmbeddings, 64);
  });

  it('reads the so400m sizes and the NaFlex model type', () => {
    const c = parseConfig(configOf('siglip2-so400m-patch16-256'));
    assert.equal(c.visionConfig?.hiddenSize, 1152);
    assert.equal(c.textConfig?.intermediateSize, 4304);
    const n = parseConfig(configOf('siglip2-so400m-patch16-naflex'));
    assert.equal(n.visionConfig?.modelType, 'siglip2_vision_model');
    assert.equal(
      n.visionConfig?.modelType === 'siglip2_vision_model' && n.visionConfig.numPatches,
      256,
    );
  });

  it('reads vision-only and text-only checkpoints', () => {
    const v = parseConfig({ model_type: 'siglip_vision_model', image_size: 256 });
    assert.equal(v.textConfig, undefined);
    assert.equal(
      v.visionConfig?.modelType === 'siglip_vision_model' && v.visionConfig.imageSize,
      256,
    );
    const t = parseConfig({ model_type: 'siglip_text_model', vocab_size: 10 });
    assert.equal(t.visionConfig, undefined);
    assert.equal(t.textConfig?.vocabSize, 10);
  });

  const bad: [string, unknown, RegExp][] = [
    ['an unsupported model_type', { model_type: 'clip' }, /model_type "clip" is not supported/],
    ['a missing model_type', {}, /model_type undefined is not supported/],
    ['a non-object', [1, 2], /must be an object/],
    [
      'a negative layer count',
      { model_type: 'siglip', vision_config: { num_hidden_layers: -1 } },
      /vision_config\.num_hidden_layers must be an integer in \[1, 1024\], got -1/,
    ],
    [
      'heads that do not divide the hidden size',
      { model_type: 'siglip', text_config: { hidden_size: 50, num_attention_heads: 3 } },
      /text_config: hidden_size 50 is not divisible by num_attention_heads 3/,
    ],
    [
      'an image size that is not a multiple of the patch',
      { model_type: 'siglip', vision_config: { image_size: 100, patch_size: 16 } },
      /image_size 100 is not a multiple of patch_size 16/,
    ],
    [
      'an unknown activation',
      { model_type: 'siglip', vision_config: { hidden_act: 'swish' } },
      /hidden_act "swish" is not supported/,
    ],
    [
      'a non-square NaFlex grid',
      { model_type: 'siglip2', vision_config: { num_patches: 200 } },
      /num_patches must be a perfect square/,
    ],
    [
      'a layer_norm_eps that is not a positive number',
      { model_type: 'siglip', vision_config: { layer_norm_eps: '1e-6' } },
      /layer_norm_eps must be a positive number/,
    ],
  ];
  for (const [what, json, message] of bad) {
    it(`rejects ${what} with a message naming the field`, () => {
      assert.throws(() => parseConfig(json, 'my/config.json'), message);
      assert.throws(() => parseConfig(json, 'my/config.json'), /my\/config\.json/);
    });
  }
});
