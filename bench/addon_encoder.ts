/**
 * A SigLIP encoder run straight on the native addon, with no TF.js in between: the kernels the `native` backend runs
 * for one inference forward pass through the encoder layers (LayerNorm, q/k/v with bias, the attention, out_proj
 * with the residual fused, LayerNorm, fc1 with GELU-tanh, fc2 with the residual; the backend now runs them inside
 * one `encoderLayer` call per layer, this calls each from JavaScript), on random weights, into buffers allocated
 * once. `npm run bench:in-model` runs it beside the model to show what TF.js costs on top of the kernels.
 * The embeddings and the head are left out (a few percent of a forward pass).
 */
import { ACTIVATIONS, type NativeAddon } from '../src/backends/native/addon.js';
import { fillUniform } from './xorshift.js';

export interface EncoderShape {
  layers: number;
  hidden: number;
  intermediate: number;
  heads: number;
  /** sequences (images or texts) */
  batch: number;
  /** tokens per sequence */
  tokens: number;
}

interface LayerWeights {
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  o: Float32Array;
  fc1: Float32Array;
  fc2: Float32Array;
  biasD: Float32Array;
  biasF: Float32Array;
  gamma: Float32Array;
  beta: Float32Array;
}

/** Pack keys far above the backend's own (which count up from 1), so the two never share a packed weight. */
const KEY_BASE = 2 ** 40;

function random(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  fillUniform(out, seed, 0, 0.04);
  return out;
}

export class AddonOnlyEncoder {
  private readonly weights: LayerWeights[];
  private readonly rows: number;
  private x: Float32Array;
  private readonly buffers: Record<
    'h' | 'q' | 'k' | 'v' | 'att' | 'x2' | 'h2' | 'f' | 'x3',
    Float32Array
  >;

  constructor(
    private readonly addon: NativeAddon,
    private readonly shape: EncoderShape,
  ) {
    const { layers, hidden: d, intermediate: f, batch, tokens } = shape;
    this.rows = batch * tokens;
    this.weights = Array.from({ length: layers }, (_, l) => ({
      q: random(d * d, 10 * l + 1),
      k: random(d * d, 10 * l + 2),
      v: random(d * d, 10 * l + 3),
      o: random(d * d, 10 * l + 4),
      fc1: random(d * f, 10 * l + 5),
      fc2: random(f * d, 10 * l + 6),
      biasD: random(d, 10 * l + 7),
      biasF: random(f, 10 * l + 8),
      gamma: new Float32Array(d).fill(1),
      beta: new Float32Array(d),
    }));
    const md = this.rows * d;
    this.x = random(md, 99);
    this.buffers = {
      h: new Float32Array(md),
      q: new Float32Array(md),
      k: new Float32Array(md),
      v: new Float32Array(md),
      att: new Float32Array(md),
      x2: new Float32Array(md),
      h2: new Float32Array(md),
      f: new Float32Array(this.rows * f),
      x3: new Float32Array(md),
    };
  }

  private linear(
    x: Float32Array,
    w: Float32Array,
    out: Float32Array,
    k: number,
    n: number,
    bias: Float32Array,
    key: number,
    options: { gelu?: boolean; residual?: Float32Array } = {},
  ): void {
    this.addon.matmul(
      x,
      w,
      out,
      1,
      1,
      this.rows,
      k,
      n,
      false,
      false,
      bias,
      options.gelu ? ACTIVATIONS.geluTanh : ACTIVATIONS.linear,
      0,
      KEY_BASE + key,
      options.residual ?? null,
    );
  }

  /** One forward pass through every layer (the output feeds the next pass, as hidden states would). */
  forward(): void {
    const { hidden: d, intermediate: f, heads, batch, tokens } = this.shape;
    const b = this.buffers;
    const eps = 1e-6;
    this.weights.forEach((w, l) => {
      const key = 8 * l;
      this.addon.layerNorm(this.x, w.gamma, w.beta, b.h, this.rows, d, eps);
      this.linear(b.h, w.q, b.q, d, d, w.biasD, key + 1);
      this.linear(b.h, w.k, b.k, d, d, w.biasD, key + 2);
      this.linear(b.h, w.v, b.v, d, d, w.biasD, key + 3);
      const headDim = d / heads;
      this.addon.attention(
        b.q,
        b.k,
        b.v,
        null,
        b.att,
        batch,
        tokens,
        tokens,
        heads,
        headDim,
        headDim ** -0.5,
      );
      this.linear(b.att, w.o, b.x2, d, d, w.biasD, key + 4, { residual: this.x });
      this.addon.layerNorm(b.x2, w.gamma, w.beta, b.h2, this.rows, d, eps);
      this.linear(b.h2, w.fc1, b.f, d, f, w.biasF, key + 5, { gelu: true });
      this.linear(b.f, w.fc2, b.x3, f, d, w.biasD, key + 6, { residual: b.x2 });
      // the layer's output is the next layer's input: swap it with the input buffer
      const next = b.x3;
      b.x3 = this.x;
      this.x = next;
    });
  }

  /** Frees the packed copies the addon may keep of these weights. */
  dispose(): void {
    for (let l = 0; l < this.weights.length; l++) {
      for (let j = 1; j <= 6; j++) this.addon.releasePacked(KEY_BASE + 8 * l + j);
    }
  }
}
