/**
 * SigLIP towers as ONNX graphs with random weights, written with the operators an exported Hugging Face
 * SigLIP model uses at opset 17 (Conv patch embedding, LayerNormalization, MatMul + Add projections, attention
 * as Reshape/Transpose/MatMul/Softmax, GELU-tanh as its formula, which onnxruntime fuses), so that
 * onnxruntime-node runs the same arithmetic transformers.js would give it. Used only by the peer benchmark.
 */
import type { SiglipTextConfig, VisionConfig } from '../../src/model/config.js';
import { OnnxGraph } from './onnx_graph.js';

interface Dims {
  d: number;
  inter: number;
  heads: number;
  eps: number;
}

/** The encoder sizes a tower's config gives. */
function dimsOf(c: SiglipTextConfig | VisionConfig): Dims {
  return {
    d: c.hiddenSize,
    inter: c.intermediateSize,
    heads: c.numAttentionHeads,
    eps: c.layerNormEps,
  };
}

function layerNorm(g: OnnxGraph, x: string, dims: Dims): string {
  return g.node(
    'LayerNormalization',
    [x, g.weight('ln_g', [dims.d], 1), g.weight('ln_b', [dims.d])],
    {
      axis: -1,
      epsilon: dims.eps,
    },
  );
}

function linear(g: OnnxGraph, x: string, inDim: number, outDim: number): string {
  return g.node('Add', [
    g.node('MatMul', [x, g.weight('w', [inDim, outDim])]),
    g.weight('b', [outDim]),
  ]);
}

/** `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`, as PyTorch exports gelu(approximate='tanh'). */
function geluTanh(g: OnnxGraph, x: string): string {
  const cube = g.node('Mul', [g.node('Mul', [x, x]), x]);
  const inner = g.node('Mul', [
    g.node('Add', [x, g.node('Mul', [cube, g.scalar('c', 0.044715)])]),
    g.scalar('s', Math.sqrt(2 / Math.PI)),
  ]);
  const t = g.node('Add', [g.node('Tanh', [inner]), g.scalar('one', 1)]);
  return g.node('Mul', [g.node('Mul', [x, t]), g.scalar('half', 0.5)]);
}

/** Heads: [B, N, D] -> [B, H, N, Dh] (or [B, H, Dh, N] when `keys`). */
function splitHeads(g: OnnxGraph, x: string, dims: Dims, keys = false): string {
  const r = g.node('Reshape', [x, g.int64s('shape', [0, 0, dims.heads, dims.d / dims.heads])]);
  return g.node('Transpose', [r], { perm: keys ? [0, 2, 3, 1] : [0, 2, 1, 3] });
}

function attention(g: OnnxGraph, q: string, k: string, v: string, dims: Dims): string {
  const scores = g.node('Mul', [
    g.node('MatMul', [splitHeads(g, q, dims), splitHeads(g, k, dims, true)]),
    g.scalar('scale', (dims.d / dims.heads) ** -0.5),
  ]);
  const probs = g.node('Softmax', [scores], { axis: -1 });
  const ctx = g.node('Transpose', [g.node('MatMul', [probs, splitHeads(g, v, dims)])], {
    perm: [0, 2, 1, 3],
  });
  return g.node('Reshape', [ctx, g.int64s('shape', [0, 0, dims.d])]);
}

function mlp(g: OnnxGraph, x: string, dims: Dims): string {
  return linear(g, geluTanh(g, linear(g, x, dims.d, dims.inter)), dims.inter, dims.d);
}

function encoderLayer(g: OnnxGraph, x: string, dims: Dims): string {
  const h = layerNorm(g, x, dims);
  const q = linear(g, h, dims.d, dims.d);
  const k = linear(g, h, dims.d, dims.d);
  const v = linear(g, h, dims.d, dims.d);
  const a = linear(g, attention(g, q, k, v, dims), dims.d, dims.d);
  const x1 = g.node('Add', [x, a]);
  return g.node('Add', [x1, mlp(g, layerNorm(g, x1, dims), dims)]);
}

/** The multihead-attention pooling head: one learned probe attends over the tokens. */
function poolingHead(g: OnnxGraph, hidden: string, dims: Dims): string {
  const probe = g.weight('probe', [1, 1, dims.d]);
  const batch = g.node('Slice', [
    g.node('Shape', [hidden]),
    g.int64s('start', [0]),
    g.int64s('end', [1]),
  ]);
  const tiles = g.node('Concat', [batch, g.int64s('ones', [1, 1])], { axis: 0 });
  const q = linear(g, g.node('Tile', [probe, tiles]), dims.d, dims.d);
  const k = linear(g, hidden, dims.d, dims.d);
  const v = linear(g, hidden, dims.d, dims.d);
  const x = linear(g, attention(g, q, k, v, dims), dims.d, dims.d);
  const y = g.node('Add', [x, mlp(g, layerNorm(g, x, dims), dims)]);
  return g.node('Squeeze', [y, g.int64s('axes', [1])]);
}

/** The vision tower: `pixel_values` [batch, 3, S, S] -> `pooler_output` [batch, D]. */
export function writeVisionTower(dataPath: string, modelPath: string, vc: VisionConfig): void {
  const size = vc.modelType === 'siglip_vision_model' ? vc.imageSize : 256;
  const p = vc.patchSize;
  const n = (size / p) ** 2;
  const dims = dimsOf(vc);
  const g = new OnnxGraph(dataPath);
  const pixels = g.input('pixel_values', 'float', ['batch', vc.numChannels, size, size]);
  const conv = g.node(
    'Conv',
    [pixels, g.weight('patch_w', [dims.d, vc.numChannels, p, p]), g.weight('patch_b', [dims.d])],
    { kernel_shape: [p, p], strides: [p, p] },
  );
  const tokens = g.node(
    'Transpose',
    [g.node('Reshape', [conv, g.int64s('shape', [0, dims.d, n])])],
    {
      perm: [0, 2, 1],
    },
  );
  let x = g.node('Add', [tokens, g.weight('pos', [n, dims.d])]);
  for (let l = 0; l < vc.numHiddenLayers; l++) x = encoderLayer(g, x, dims);
  x = layerNorm(g, x, dims);
  g.node('Identity', [poolingHead(g, x, dims)], {}, 'pooler_output');
  g.output('pooler_output', 'float', ['batch', dims.d]);
  g.finish(modelPath);
}

/** The text tower: `input_ids` [batch, L] (int64) -> `pooler_output` [batch, projection]. */
export function writeTextTower(
  dataPath: string,
  modelPath: string,
  tc: SiglipTextConfig,
  length: number,
): void {
  const dims = dimsOf(tc);
  const g = new OnnxGraph(dataPath);
  const ids = g.input('input_ids', 'int64', ['batch', length]);
  const table = g.weight('token_embedding', [tc.vocabSize, dims.d]);
  const pos = g.weight('position_embedding', [tc.maxPositionEmbeddings, dims.d]);
  const posUsed = g.node('Slice', [pos, g.int64s('start', [0]), g.int64s('end', [length])]);
  let x = g.node('Add', [g.node('Gather', [table, ids], { axis: 0 }), posUsed]);
  for (let l = 0; l < tc.numHiddenLayers; l++) x = encoderLayer(g, x, dims);
  x = layerNorm(g, x, dims);
  const last = g.node('Gather', [x, g.int64s('last', [length - 1], [])], { axis: 1 });
  g.node('Identity', [linear(g, last, dims.d, tc.projectionSize)], {}, 'pooler_output');
  g.output('pooler_output', 'float', ['batch', tc.projectionSize]);
  g.finish(modelPath);
}
