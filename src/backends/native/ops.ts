/**
 * The model's LayerNorm, GELU-tanh and attention as single native ops with native gradients (row reductions and
 * GEMMs in C++), and at inference linear layers with their GELU-tanh or residual add fused into the matMul,
 * installed as the `native` backend's layer-kernel overrides (src/layers/kernels/overrides.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { recordingGradients, tapeIsOn } from '../../internals/tfjs.js';
import { MASKED_SCORE } from '../../layers/kernels/attention.js';
import { opWithLazyGrads } from '../../layers/kernels/lazy_grad.js';
import type {
  EncoderLayerOptions,
  EncoderLayerWeights,
  FusedLinearOptions,
  LayerKernelOverrides,
  ProductPlusLowRank,
} from '../../layers/kernels/overrides.js';
import { ACTIVATIONS } from './addon.js';
import type { NativeBackend } from './backend.js';
import { NATIVE } from './kernels.js';

function nativeBackend(): NativeBackend | undefined {
  if (tf.getBackend() !== NATIVE) return undefined;
  return tf.backend() as unknown as NativeBackend;
}

const usable = (...ts: tf.Tensor[]) => ts.every((t) => t.dtype === 'float32' && t.size > 0);

/** Runs an op in a named scope: tf.profile lists it under that name. */
function named(name: string, f: () => tf.Tensor): tf.Tensor {
  return tf.tidy(name, f);
}

/** Computes several gradients in one native call, the first time any of them is asked for. */
function once<T>(f: () => T): () => T {
  let v: T | undefined;
  return () => (v ??= f());
}

function layerNorm(
  x: tf.Tensor,
  gamma: tf.Tensor1D,
  beta: tf.Tensor1D,
  epsilon: number,
): tf.Tensor | undefined {
  const be = nativeBackend();
  if (be === undefined || !usable(x, gamma, beta) || x.rank === 0) return undefined;
  const cols = x.shape[x.rank - 1];
  if (gamma.size !== cols || beta.size !== cols) {
    throw new Error(
      `LayerNorm: gamma [${gamma.shape}] and beta [${beta.shape}] must have the last dimension of x [${x.shape}]`,
    );
  }
  const rows = x.size / cols;
  return named('NativeLayerNorm', () =>
    opWithLazyGrads(
      { x, gamma, beta },
      (save) => {
        save([x, gamma]);
        const out = be.alloc(x.size);
        be.addon.layerNorm(
          be.f32(x, 'LayerNorm', 'x'),
          be.f32(gamma, 'LayerNorm', 'gamma'),
          be.f32(beta, 'LayerNorm', 'beta'),
          out,
          rows,
          cols,
          epsilon,
        );
        return tf.tensor(out, x.shape, 'float32');
      },
      (dy, saved) => {
        const [sx, sg] = saved;
        const grads = once(() => {
          const dx = be.alloc(sx.size);
          const dgamma = be.alloc(cols);
          const dbeta = be.alloc(cols);
          be.addon.layerNormBackward(
            be.f32(sx, 'LayerNormBackward', 'x'),
            be.f32(sg, 'LayerNormBackward', 'gamma'),
            be.f32(dy, 'LayerNormBackward', 'dy'),
            dx,
            dgamma,
            dbeta,
            rows,
            cols,
            epsilon,
          );
          return { dx, dgamma, dbeta };
        });
        return {
          x: () => tf.tensor(grads().dx, sx.shape, 'float32'),
          gamma: () => tf.tensor(grads().dgamma, [cols], 'float32'),
          beta: () => tf.tensor(grads().dbeta, [cols], 'float32'),
        };
      },
    ),
  );
}

function geluTanh(x: tf.Tensor): tf.Tensor | undefined {
  const be = nativeBackend();
  if (be === undefined || !usable(x)) return undefined;
  return named('NativeGeluTanh', () =>
    opWithLazyGrads(
      { x },
      (save) => {
        save([x]);
        const out = be.alloc(x.size);
        be.addon.geluTanh(be.f32(x, 'GeluTanh', 'x'), out, x.size);
        return tf.tensor(out, x.shape, 'float32');
      },
      (dy, saved) => ({
        x: () => {
          const [sx] = saved;
          const dx = be.alloc(sx.size);
          be.addon.geluTanhBackward(
            be.f32(sx, 'GeluTanhBackward', 'x'),
            be.f32(dy, 'GeluTanhBackward', 'dy'),
            dx,
            sx.size,
          );
          return tf.tensor(dx, sx.shape, 'float32');
        },
      }),
    ),
  );
}

/** The additive key mask of the reference: 0 where keyMask is 1, the float32 minimum where it is 0. */
function additiveMask(keyMask: tf.Tensor): Float32Array {
  const m = keyMask.dataSync();
  const out = new Float32Array(m.length);
  for (let i = 0; i < m.length; i++) out[i] = Math.fround((1 - Number(m[i])) * MASKED_SCORE);
  return out;
}

function attention(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  numHeads: number,
  keyMask?: tf.Tensor,
): tf.Tensor | undefined {
  const be = nativeBackend();
  if (be === undefined || !usable(q, k, v) || q.rank !== 3 || k.rank !== 3 || v.rank !== 3) {
    return undefined;
  }
  const [b, nq, dim] = q.shape as [number, number, number];
  const nk = k.shape[1] as number;
  const headDim = dim / numHeads;
  const shapes = `q [${q.shape}], k [${k.shape}], v [${v.shape}], ${numHeads} heads`;
  if (!Number.isInteger(headDim) || k.shape.some((d, i) => d !== v.shape[i])) {
    throw new Error(`native Attention: shapes do not fit: ${shapes}`);
  }
  if (k.shape[0] !== b || k.shape[2] !== dim) {
    throw new Error(`native Attention: shapes do not fit: ${shapes}`);
  }
  if (keyMask !== undefined && (keyMask.size !== b * nk || keyMask.shape[0] !== b)) {
    throw new Error(
      `native Attention: key mask [${keyMask.shape}] must be [${b}, ${nk}] (${shapes})`,
    );
  }
  const mask = keyMask === undefined ? null : additiveMask(keyMask);
  const scale = headDim ** -0.5;
  return named('NativeAttention', () =>
    opWithLazyGrads(
      { q, k, v },
      (save) => {
        save([q, k, v]);
        const out = be.alloc(q.size);
        be.addon.attention(
          be.f32(q, 'Attention', 'q'),
          be.f32(k, 'Attention', 'k'),
          be.f32(v, 'Attention', 'v'),
          mask,
          out,
          b,
          nq,
          nk,
          numHeads,
          headDim,
          scale,
        );
        return tf.tensor(out, q.shape, 'float32');
      },
      (dy, saved) => {
        const [sq, sk, sv] = saved;
        const grads = once(() => {
          const dq = be.alloc(sq.size);
          const dk = be.alloc(sk.size);
          const dv = be.alloc(sv.size);
          be.addon.attentionBackward(
            be.f32(sq, 'AttentionBackward', 'q'),
            be.f32(sk, 'AttentionBackward', 'k'),
            be.f32(sv, 'AttentionBackward', 'v'),
            mask,
            be.f32(dy, 'AttentionBackward', 'dy'),
            dq,
            dk,
            dv,
            b,
            nq,
            nk,
            numHeads,
            headDim,
            scale,
          );
          return { dq, dk, dv };
        });
        return {
          q: () => tf.tensor(grads().dq, sq.shape, 'float32'),
          k: () => tf.tensor(grads().dk, sk.shape, 'float32'),
          v: () => tf.tensor(grads().dv, sv.shape, 'float32'),
        };
      },
    ),
  );
}

/** A linear product's operands as the addon's matmul takes them: `x` `[m, k]`, the kernel `[k, n]` or `[n, k]`. */
interface LinearProduct {
  x: tf.Tensor;
  kernel: tf.Tensor2D;
  transposeKernel: boolean;
  bias: tf.Tensor1D | undefined;
  m: number;
  k: number;
  n: number;
}

/**
 * `out = act(x @ op(kernel) + bias) (+ residual)` in one addon call, the kernel kept pre-packed from its second use
 * (packKeyFor); `residual` may be `out` itself (accumulate in place). `op` names the kernel in errors.
 */
function linearInto(
  be: NativeBackend,
  op: string,
  p: LinearProduct,
  out: Float32Array,
  activation: number,
  residual: Float32Array | null,
): void {
  const kernelValues = be.f32(p.kernel, op, 'kernel');
  const copied = be.addon.matmul(
    be.f32(p.x, op, 'x'),
    kernelValues,
    out,
    1,
    1,
    p.m,
    p.k,
    p.n,
    false,
    p.transposeKernel,
    p.bias === undefined ? null : be.f32(p.bias, op, 'bias'),
    activation,
    0,
    be.packKeyFor(p.kernel, p.k * p.n, p.transposeKernel),
    residual,
  );
  if (copied) be.afterPack(p.kernel, kernelValues, p.transposeKernel);
}

/**
 * `act(x @ kernel + bias) (+ residual)` in one native matMul (GELU-tanh as oneDNN's post-op or after OpenBLAS's
 * sgemm; the residual as oneDNN's sum post-op or OpenBLAS's beta = 1 on a copy of it). Inference only: while a
 * gradient is recorded it declines, and the unfused ops run with their gradients.
 */
function fusedLinear(
  x: tf.Tensor,
  kernel: tf.Tensor2D,
  bias: tf.Tensor1D | undefined,
  options: FusedLinearOptions,
): tf.Tensor | undefined {
  const be = nativeBackend();
  if (be === undefined || recordingGradients() || x.rank < 1 || kernel.rank !== 2) return undefined;
  const { activation, residual } = options;
  if (!usable(x, kernel) || (bias !== undefined && !usable(bias))) return undefined;
  if (residual !== undefined && (!usable(residual) || activation !== undefined)) return undefined;
  const [k, n] = kernel.shape;
  if (x.shape[x.rank - 1] !== k || (bias !== undefined && bias.size !== n)) return undefined;
  const shape = [...x.shape.slice(0, -1), n];
  if (residual !== undefined && !tf.util.arraysEqual(residual.shape, shape)) return undefined;
  const m = x.size / k;
  return named('NativeFusedLinear', () =>
    opWithLazyGrads(
      bias === undefined ? { x, kernel } : { x, kernel, bias },
      () => {
        const out = be.alloc(m * n);
        linearInto(
          be,
          'FusedLinear',
          { x, kernel, transposeKernel: false, bias, m, k, n },
          out,
          activation === 'gelu_tanh' ? ACTIVATIONS.geluTanh : ACTIVATIONS.linear,
          residual === undefined ? null : be.f32(residual, 'FusedLinear', 'residual'),
        );
        return tf.tensor(out, shape, 'float32');
      },
      () => {
        throw new Error('native FusedLinear is inference-only: it has no gradient');
      },
    ),
  );
}

/**
 * `x @ op(kernel) (+ bias) + u @ op(v)` in two native matMuls writing one output: the product (bias fused), then
 * the low-rank one accumulated onto it in place (oneDNN's sum post-op or OpenBLAS's beta = 1, on the output
 * itself), so the `[m, n]` low-rank term is never a tensor and no add pass runs. No gradient: it declines while
 * the tape records.
 */
const productPlusLowRank: ProductPlusLowRank = (
  x,
  kernel,
  transposeKernel,
  bias,
  u,
  v,
  transposeV,
) => {
  const be = nativeBackend();
  if (be === undefined || tapeIsOn()) return undefined;
  if (!usable(x, kernel, u, v) || (bias !== undefined && !usable(bias))) return undefined;
  const [m, k] = x.shape;
  const [kk, n] = transposeKernel ? [kernel.shape[1], kernel.shape[0]] : kernel.shape;
  const r = u.shape[1];
  const [vr, vn] = transposeV ? [v.shape[1], v.shape[0]] : v.shape;
  if (
    kk !== k ||
    u.shape[0] !== m ||
    vr !== r ||
    vn !== n ||
    (bias !== undefined && bias.size !== n)
  ) {
    const t = (flag: boolean) => (flag ? '^T' : '');
    throw new Error(
      `native ProductPlusLowRank: x [${x.shape}] @ kernel [${kernel.shape}]${t(transposeKernel)} + ` +
        `u [${u.shape}] @ v [${v.shape}]${t(transposeV)}${bias ? ` with bias [${bias.shape}]` : ''} do not fit`,
    );
  }
  const inputs: tf.NamedTensorMap =
    bias === undefined ? { x, kernel, u, v } : { x, kernel, bias, u, v };
  return named('NativeProductPlusLowRank', () =>
    opWithLazyGrads(
      inputs,
      () => {
        const out = be.alloc(m * n);
        const linear = ACTIVATIONS.linear;
        const op = 'ProductPlusLowRank';
        linearInto(be, op, { x, kernel, transposeKernel, bias, m, k, n }, out, linear, null);
        const uv = be.f32(u, op, 'u');
        const vv = be.f32(v, op, 'v');
        be.addon.matmul(uv, vv, out, 1, 1, m, r, n, false, transposeV, null, linear, 0, 0, out);
        return tf.tensor(out, [m, n], 'float32');
      },
      () => {
        throw new Error(
          'native ProductPlusLowRank has no gradient: it runs only where the tape is off',
        );
      },
    ),
  ) as tf.Tensor2D;
};

/** The products of an encoder layer in the order of the addon's packKeys and returned bits. */
const LAYER_PRODUCTS = ['qProj', 'kProj', 'vProj', 'outProj', 'fc1', 'fc2'] as const;

/**
 * The layer's input and weights by name (`x`, `qProj.kernel`, ...), checked against x `[B, N, D]`: throws naming a
 * weight or mask whose shape does not fit.
 */
function layerTensors(
  x: tf.Tensor,
  w: EncoderLayerWeights,
  { numHeads, keyMask }: EncoderLayerOptions,
): Record<string, tf.Tensor> {
  const [b, n, d] = x.shape as [number, number, number];
  const f = w.fc1.kernel.shape[1];
  const expected: Record<string, number[]> = {
    'fc1.kernel': [d, f],
    'fc1.bias': [f],
    'fc2.kernel': [f, d],
  };
  const tensors: Record<string, tf.Tensor> = { x };
  for (const [module, weights] of Object.entries(w)) {
    for (const [name, t] of Object.entries(weights as Record<string, tf.Tensor>)) {
      const key = `${module}.${name}`;
      const shape = expected[key] ?? (name === 'kernel' ? [d, d] : [d]);
      if (!tf.util.arraysEqual(t.shape, shape)) {
        throw new Error(
          `native EncoderLayer: ${key} is [${t.shape}], expected [${shape}] for x [${x.shape}]`,
        );
      }
      tensors[key] = t;
    }
  }
  if (d % numHeads !== 0) {
    throw new Error(`native EncoderLayer: hidden size ${d} is not divisible by ${numHeads} heads`);
  }
  if (keyMask !== undefined && !tf.util.arraysEqual(keyMask.shape, [b, n])) {
    throw new Error(
      `native EncoderLayer: key mask [${keyMask.shape}] must be [${b}, ${n}] (x [${x.shape}])`,
    );
  }
  return tensors;
}

/**
 * A whole encoder layer in one native call (native/src/encoder_layer.cc): the kernels the op-by-op path runs, in the
 * same order, without the TF.js work between them. Inference only (declines while a gradient is recorded); declines
 * what the addon does not take (non-float32 tensors, x not `[B, N, D]`), and throws on weights whose shapes do not
 * fit, naming them.
 */
function encoderLayer(
  x: tf.Tensor,
  w: EncoderLayerWeights,
  options: EncoderLayerOptions,
): tf.Tensor | undefined {
  const be = nativeBackend();
  if (be === undefined || recordingGradients() || x.rank !== 3) return undefined;
  const tensors = layerTensors(x, w, options);
  if (!usable(...Object.values(tensors))) return undefined;
  const { numHeads, layerNormEps, keyMask } = options;
  const [b, n, d] = x.shape as [number, number, number];
  const f = w.fc1.kernel.shape[1];
  const mask = keyMask === undefined ? null : additiveMask(keyMask);
  const values = (name: string) => be.f32(tensors[name], 'EncoderLayer', name);
  const kernels = LAYER_PRODUCTS.map((p) => w[p].kernel);
  return named('NativeEncoderLayer', () =>
    opWithLazyGrads(
      tensors,
      () => {
        const out = be.alloc(x.size);
        const kernelValues = LAYER_PRODUCTS.map((p) => values(`${p}.kernel`));
        const copied = be.addon.encoderLayer(
          values('x'),
          values('layerNorm1.gamma'),
          values('layerNorm1.beta'),
          kernelValues[0],
          values('qProj.bias'),
          kernelValues[1],
          values('kProj.bias'),
          kernelValues[2],
          values('vProj.bias'),
          kernelValues[3],
          values('outProj.bias'),
          values('layerNorm2.gamma'),
          values('layerNorm2.beta'),
          kernelValues[4],
          values('fc1.bias'),
          kernelValues[5],
          values('fc2.bias'),
          mask,
          out,
          b,
          n,
          d,
          numHeads,
          f,
          layerNormEps,
          (d / numHeads) ** -0.5,
          kernels.map((k) => be.packKeyFor(k, k.size, false)),
        );
        kernels.forEach((k, i) => {
          if (copied & (1 << i)) be.afterPack(k, kernelValues[i], false);
        });
        return tf.tensor(out, x.shape, 'float32');
      },
      () => {
        throw new Error('native EncoderLayer is inference-only: it has no gradient');
      },
    ),
  );
}

export const NATIVE_LAYER_OVERRIDES: LayerKernelOverrides = {
  layerNorm,
  geluTanh,
  attention,
  fusedLinear,
  productPlusLowRank,
  encoderLayer,
  fastTransposedMatMul: true,
};
