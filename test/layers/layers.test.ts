import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { readSafetensors, type LoadedTensor } from '../../src/io/safetensors.js';
import {
  L2Normalize,
  LayerNorm,
  Linear,
  SiglipAttention,
  SiglipEncoder,
  SiglipEncoderLayer,
  SiglipLogits,
  SiglipMLP,
  SiglipMultiheadAttentionPoolingHead,
  SiglipTextEmbeddings,
  SiglipTextHead,
  SiglipVisionEmbeddings,
  type SiglipLayer,
} from '../../src/layers/index.js';
import { loadHfCheckpoint } from '../../src/model/load_hf.js';
import type { SiglipModel } from '../../src/model/siglip_model.js';
import { useTestBackend } from '../helpers/backend.js';
import { fixture } from '../helpers/fixtures.js';

const TOL = { atol: 1e-4, rtol: 1e-4 };

function tensorOf(t: LoadedTensor): tf.Tensor {
  return tf.tensor(
    t.data as Float32Array | Int32Array,
    t.shape,
    t.data instanceof Float32Array ? 'float32' : 'int32',
  );
}

function assertClose(actual: tf.Tensor, expected: LoadedTensor, what: string): void {
  assert.deepEqual(actual.shape, expected.shape, `${what}: shape`);
  const a = actual.dataSync();
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const e = expected.data[i];
    const excess = Math.abs(a[i] - e) - (TOL.atol + TOL.rtol * Math.abs(e));
    worst = Math.max(worst, excess);
  }
  assert.ok(worst <= 0, `${what}: exceeds tolerance by ${worst}`);
}

// Each layer, with the fixture checkpoint's weights, maps the fixture's input of that stage to its output.
describe('layers against the siglip_tiny fixture', () => {
  let model: SiglipModel;
  let inputs: Map<string, LoadedTensor>;
  let outputs: Map<string, LoadedTensor>;
  const out = (name: string) => outputs.get(name) as LoadedTensor;

  before(async () => {
    await useTestBackend('cpu');
    model = await loadHfCheckpoint(fixture('siglip_tiny'));
    inputs = await readSafetensors(fixture('siglip_tiny', 'inputs.safetensors'));
    outputs = await readSafetensors(fixture('siglip_tiny', 'outputs.safetensors'));
  });
  after(() => model.dispose());

  const vision = () => model.vision!.model;
  const text = () => model.text!.model;

  it('SiglipVisionEmbeddings: pixel_values -> vision.hidden_states.0', () => {
    tf.tidy(() => {
      const layer = vision().getLayer('embeddings');
      assertClose(
        layer.call(tensorOf(inputs.get('pixel_values')!), {}) as tf.Tensor,
        out('vision.hidden_states.0'),
        'embeddings',
      );
    });
  });

  it('SiglipTextEmbeddings: input_ids -> text.hidden_states.0', () => {
    tf.tidy(() => {
      const layer = text().getLayer('embeddings');
      assertClose(
        layer.call(tensorOf(inputs.get('input_ids')!), {}) as tf.Tensor,
        out('text.hidden_states.0'),
        'text embeddings',
      );
    });
  });

  for (const tower of ['vision', 'text'] as const) {
    for (const i of [0, 1]) {
      it(`SiglipEncoderLayer (${tower} layers.${i}): hidden_states.${i} -> hidden_states.${i + 1}`, () => {
        tf.tidy(() => {
          const encoder = (tower === 'vision' ? vision() : text()).getLayer(
            'encoder',
          ) as SiglipEncoder;
          const x = tensorOf(out(`${tower}.hidden_states.${i}`));
          assertClose(
            encoder.layers[i].call(x),
            out(`${tower}.hidden_states.${i + 1}`),
            `${tower} layer ${i}`,
          );
        });
      });
    }
    it(`SiglipEncoder (${tower}): hidden_states.0 -> every later hidden state`, () => {
      tf.tidy(() => {
        const encoder = (tower === 'vision' ? vision() : text()).getLayer(
          'encoder',
        ) as SiglipEncoder;
        const states = encoder.call(tensorOf(out(`${tower}.hidden_states.0`)));
        states.forEach((s, i) =>
          assertClose(s, out(`${tower}.hidden_states.${i + 1}`), `state ${i + 1}`),
        );
      });
    });
  }

  it('LayerNorm (post_layernorm, final_layer_norm): last hidden state -> last_hidden_state', () => {
    tf.tidy(() => {
      const v = vision()
        .getLayer('post_layernorm')
        .call(tensorOf(out('vision.hidden_states.2')), {}) as tf.Tensor;
      assertClose(v, out('vision.last_hidden_state'), 'post_layernorm');
      const t = text()
        .getLayer('final_layer_norm')
        .call(tensorOf(out('text.hidden_states.2')), {}) as tf.Tensor;
      assertClose(t, out('text.last_hidden_state'), 'final_layer_norm');
    });
  });

  it('SiglipMultiheadAttentionPoolingHead: vision.last_hidden_state -> vision.pooler_output', () => {
    tf.tidy(() => {
      const y = vision()
        .getLayer('head')
        .call(tensorOf(out('vision.last_hidden_state')), {}) as tf.Tensor;
      assertClose(y, out('vision.pooler_output'), 'head');
    });
  });

  it('SiglipTextHead: text.last_hidden_state -> text.pooler_output (the last position)', () => {
    tf.tidy(() => {
      const y = text()
        .getLayer('head')
        .call(tensorOf(out('text.last_hidden_state')), {}) as tf.Tensor;
      assertClose(y, out('text.pooler_output'), 'text head');
    });
  });

  it('L2Normalize and SiglipLogits: pooler outputs -> embeds and logits', () => {
    tf.tidy(() => {
      const scores = model.scores!;
      const ie = scores
        .getLayer('image_embeds')
        .call(tensorOf(out('vision.pooler_output')), {}) as tf.Tensor;
      const te = scores
        .getLayer('text_embeds')
        .call(tensorOf(out('text.pooler_output')), {}) as tf.Tensor;
      assertClose(ie, out('image_embeds'), 'image_embeds');
      assertClose(te, out('text_embeds'), 'text_embeds');
      const [lpi, lpt] = scores.getLayer('logits').call([ie, te], {}) as tf.Tensor[];
      assertClose(lpi, out('logits_per_image'), 'logits_per_image');
      assertClose(lpt, out('logits_per_text'), 'logits_per_text');
    });
  });
});

/** Float64 reference of multi-head self-attention with q/k/v/out projections, written as plain loops. */
function referenceAttention(
  x: number[][],
  w: Record<'q' | 'k' | 'v' | 'o', { kernel: number[][]; bias: number[] }>,
  heads: number,
  keyMask?: number[],
): number[][] {
  const proj = (rows: number[][], p: { kernel: number[][]; bias: number[] }) =>
    rows.map((r) => p.bias.map((b, j) => b + r.reduce((s, v, i) => s + v * p.kernel[i][j], 0)));
  const [q, k, v] = [proj(x, w.q), proj(x, w.k), proj(x, w.v)];
  const d = x[0].length / heads;
  const out = x.map(() => new Array<number>(x[0].length).fill(0));
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < x.length; i++) {
      const scores = k.map((kr, j) => {
        let s = 0;
        for (let c = 0; c < d; c++) s += q[i][h * d + c] * kr[h * d + c];
        return s / Math.sqrt(d) + (keyMask && !keyMask[j] ? -1e30 : 0);
      });
      const m = Math.max(...scores);
      const e = scores.map((s) => Math.exp(s - m));
      const z = e.reduce((a, b) => a + b, 0);
      for (let c = 0; c < d; c++)
        out[i][h * d + c] = e.reduce((s, p, j) => s + (p / z) * v[j][h * d + c], 0);
    }
  }
  return proj(out, w.o);
}

describe('SiglipAttention and SiglipMLP against float64 references', () => {
  before(() => useTestBackend('cpu'));

  it('SiglipAttention matches multi-head attention computed in float64, with and without a key mask', () => {
    const layer = new SiglipAttention({ name: 'self_attn', hiddenSize: 8, numHeads: 2 });
    const x = tf.randomNormal([1, 5, 8], 0, 1, 'float32', 7);
    layer.apply(x);
    const get = (l: Linear) => ({
      kernel: l.kernel.read().arraySync() as number[][],
      bias: l.bias!.read().arraySync() as number[],
    });
    // Random biases too, so the test sees them.
    for (const l of [layer.qProj, layer.kProj, layer.vProj, layer.outProj]) {
      l.bias!.write(tf.randomNormal([8], 0, 0.5, 'float32', 3));
    }
    const w = {
      q: get(layer.qProj),
      k: get(layer.kProj),
      v: get(layer.vProj),
      o: get(layer.outProj),
    };
    const rows = (x.arraySync() as number[][][])[0];
    for (const mask of [undefined, [1, 1, 0, 1, 0]]) {
      const ref = referenceAttention(rows, w, 2, mask);
      const y = tf.tidy(() => layer.call(mask ? [x, tf.tensor2d([mask])] : x) as tf.Tensor);
      const got = (y.arraySync() as number[][][])[0];
      y.dispose();
      got.forEach((r, i) =>
        r.forEach((v, j) =>
          assert.ok(Math.abs(v - ref[i][j]) < 1e-5, `[${i}][${j}] ${v} vs ${ref[i][j]}`),
        ),
      );
    }
    x.dispose();
    layer.dispose();
  });

  it('SiglipMLP is fc2(gelu_tanh(fc1(x))) computed in float64', () => {
    const layer = new SiglipMLP({ name: 'mlp', hiddenSize: 4, intermediateSize: 6 });
    const x = tf.tensor3d([[[0.5, -1.5, 2, 0.1]]]);
    const y = layer.apply(x) as tf.Tensor;
    const k1 = layer.fc1.kernel.read().arraySync() as number[][];
    const k2 = layer.fc2.kernel.read().arraySync() as number[][];
    const xs = [0.5, -1.5, 2, 0.1];
    const gelu = (v: number) =>
      0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
    const h = k1[0].map((_, j) => gelu(xs.reduce((s, v, i) => s + v * k1[i][j], 0)));
    const ref = k2[0].map((_, j) => h.reduce((s, v, i) => s + v * k2[i][j], 0));
    (y.arraySync() as number[][][])[0][0].forEach((v, j) => assert.ok(Math.abs(v - ref[j]) < 1e-6));
    tf.dispose([x, y]);
    layer.dispose();
  });
});

describe('getConfig / fromConfig round trip', () => {
  before(() => useTestBackend('cpu'));
  const dims = {
    hiddenSize: 8,
    numHeads: 2,
    intermediateSize: 12,
    layerNormEps: 1e-5,
    hiddenAct: 'gelu_pytorch_tanh' as const,
  };
  const cases: [string, () => SiglipLayer][] = [
    ['Linear', () => new Linear({ name: 'fc', units: 3, useBias: false })],
    ['LayerNorm', () => new LayerNorm({ name: 'ln', epsilon: 1e-5 })],
    ['SiglipAttention', () => new SiglipAttention({ name: 'a', hiddenSize: 8, numHeads: 2 })],
    [
      'SiglipMLP',
      () => new SiglipMLP({ name: 'm', hiddenSize: 8, intermediateSize: 12, hiddenAct: 'gelu' }),
    ],
    ['SiglipEncoderLayer', () => new SiglipEncoderLayer({ name: 'l', ...dims })],
    ['SiglipEncoder', () => new SiglipEncoder({ name: 'e', numLayers: 3, ...dims })],
    [
      'SiglipVisionEmbeddings',
      () => new SiglipVisionEmbeddings({ name: 'v', hiddenSize: 8, patchSize: 4, imageSize: 16 }),
    ],
    [
      'SiglipTextEmbeddings',
      () =>
        new SiglipTextEmbeddings({
          name: 't',
          hiddenSize: 8,
          vocabSize: 30,
          maxPositionEmbeddings: 7,
        }),
    ],
    [
      'SiglipMultiheadAttentionPoolingHead',
      () => new SiglipMultiheadAttentionPoolingHead({ name: 'h', ...dims }),
    ],
    ['SiglipTextHead', () => new SiglipTextHead({ name: 'th', projectionSize: 5 })],
    ['SiglipLogits', () => new SiglipLogits({ name: 'logits' })],
    ['L2Normalize', () => new L2Normalize({ name: 'n' })],
  ];
  for (const [name, make] of cases) {
    it(`${name} is registered and its config round-trips`, () => {
      const layer = make();
      const config = layer.getConfig();
      const className = (layer.constructor as unknown as { className: string }).className;
      const entry = tf.serialization.SerializationMap.getMap().classNameMap[className];
      assert.ok(entry, `${className} is not registered`);
      const [cls, fromConfig] = entry;
      const restored = fromConfig(cls, config) as SiglipLayer;
      assert.equal(restored.constructor, layer.constructor);
      assert.deepEqual(restored.getConfig(), config);
    });
  }

  it('a whole tower survives toJSON -> modelFromJSON with the same weights names', async () => {
    const model = await loadHfCheckpoint(fixture('siglip_tiny'), { towers: 'vision' });
    const topology = model.vision!.model.toJSON(undefined, false) as tf.serialization.ConfigDict;
    const restored = await tf.models.modelFromJSON({ modelTopology: topology });
    assert.deepEqual(
      restored.weights.map((w) => w.originalName),
      model.vision!.model.weights.map((w) => w.originalName),
    );
    restored.dispose();
    model.dispose();
  });
});
