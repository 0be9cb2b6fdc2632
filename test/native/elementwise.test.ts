import * as tf from '@tensorflow/tfjs';
import { strict as assert } from 'node:assert';
import { seededTinyModel, makePairs } from '../../examples/finetune_shapes.js';
import type { NativeAddon } from '../../src/backends/native/index.js';
import { AdamW } from '../../src/train/optimizer.js';
import { modelParams, paramKey } from '../../src/train/params.js';
import { Trainer } from '../../src/train/trainer.js';
import { assertNativeMatchesCpu, maxDiff, random, requireNative, valuesOn } from './helpers.js';

type AddonFn = 'transpose' | 'binary' | 'reduceSum' | 'adamw';

/** Runs `f` with the native backend's addon wrapped so that calls to `fn` are counted; returns the count. */
async function countingCalls(fn: AddonFn, f: () => Promise<unknown>): Promise<number> {
  await tf.setBackend('native');
  const backend = tf.backend() as unknown as { addon: NativeAddon };
  const real = backend.addon;
  let calls = 0;
  const realFn = real[fn] as (...x: unknown[]) => unknown;
  // the addon's functions are read-only properties: shadow one on an object that inherits the rest
  backend.addon = Object.create(real, {
    [fn]: {
      value: (...a: unknown[]) => {
        calls++;
        return realFn(...a);
      },
    },
  }) as NativeAddon;
  try {
    await f();
  } finally {
    backend.addon = real;
  }
  return calls;
}

/** Counts the addon calls of `fn` made while `f` runs on the native backend. */
const nativeCalls = (fn: AddonFn, f: () => tf.Tensor) =>
  countingCalls(fn, () => valuesOn('native', f));

const rand = random(11);
const ints = (n: number, lo: number, hi: number) =>
  Int32Array.from(rand(n), (u) => Math.floor(lo + ((u + 1) / 2) * (hi - lo)));

/** All permutations of 0..n-1. */
function permutations(n: number): number[][] {
  if (n === 1) return [[0]];
  const out: number[][] = [];
  for (const p of permutations(n - 1)) {
    for (let i = 0; i <= p.length; i++) out.push([...p.slice(0, i), n - 1, ...p.slice(i)]);
  }
  return out;
}

describe('native backend: Transpose, binary ops, Sum/Mean, GatherV2, fused AdamW against the cpu backend', function () {
  let addon: NativeAddon;
  before(function () {
    addon = requireNative(this);
  });
  after(async () => {
    await tf.setBackend('cpu');
  });

  it('Transpose: ranks 1-6, float32 and int32, odd sizes, every permutation up to rank 4, identical to cpu', async () => {
    const shapes = [
      [1003],
      [17, 1],
      [3, 1025],
      [1, 17, 3],
      [33, 17, 40],
      [3, 1, 17, 5],
      [2, 3, 17, 19, 2],
      [2, 3, 1, 5, 7, 3],
      [24, 3, 4, 16, 4, 16],
    ];
    for (const shape of shapes) {
      const n = shape.reduce((a, b) => a * b, 1);
      const perms =
        shape.length <= 4
          ? permutations(shape.length)
          : [
              shape.map((_, i) => shape.length - 1 - i),
              [0, 2, 4, 1, 3, 5].slice(0, shape.length).map((p) => p % shape.length),
              shape.map((_, i) => (i + 1) % shape.length),
            ].filter((p) => new Set(p).size === p.length);
      if (shape.length === 6) perms.push([0, 2, 4, 1, 3, 5]);
      const xf = rand(n);
      const xi = ints(n, -1000, 1000);
      for (const perm of perms) {
        const label = `Transpose [${shape}] perm [${perm}]`;
        await assertNativeMatchesCpu(label, () => tf.tensor(xf, shape).transpose(perm), 0);
        await assertNativeMatchesCpu(
          `${label} int32`,
          () => tf.tensor(xi, shape, 'int32').transpose(perm),
          0,
        );
      }
    }
    const calls = await nativeCalls('transpose', () =>
      tf.tensor(rand(3 * 17 * 5), [3, 17, 5]).transpose([2, 0, 1]),
    );
    assert.equal(calls, 1, 'the native Transpose ran');
  });

  it('Transpose: the loops (runs, tiles) and oneDNN reorder give the cpu values', async () => {
    await tf.setBackend('cpu');
    const shape = [5, 17, 33, 3];
    const x = rand(5 * 17 * 33 * 3);
    for (const perm of [
      [3, 1, 0, 2],
      [1, 0, 2, 3],
    ]) {
      const want = tf.tidy(() => Float32Array.from(tf.tensor(x, shape).transpose(perm).dataSync()));
      for (const impl of [0, 1, 2] as const) {
        const out = new Float32Array(x.length);
        addon.transpose(x, out, shape, perm, impl);
        assert.deepEqual(out, want, `perm [${perm}] impl ${impl}`);
      }
    }
  });

  it('Add, Sub, Multiply, RealDiv: full, row, column and scalar broadcasts, odd sizes, identical to cpu', async () => {
    const cases: [number[], number[]][] = [
      [[1003], [1003]],
      [
        [24, 16, 48],
        [24, 16, 48],
      ],
      [[17, 1001], [1001]],
      [
        [17, 1001],
        [1, 1001],
      ],
      [
        [2, 3, 17, 5],
        [17, 5],
      ],
      [
        [17, 5],
        [2, 3, 17, 5],
      ],
      [
        [24, 48],
        [24, 1],
      ],
      [
        [24, 1],
        [24, 48],
      ],
      [
        [3, 17, 5],
        [3, 1, 1],
      ],
      [
        [17, 1],
        [1, 33],
      ],
      [[1037, 3], []],
      [[], [1037, 3]],
      [[1], [1]],
      [
        [3, 1, 5],
        [1, 4, 1],
      ], // neither: the cpu kernel
    ];
    for (const [sa, sb] of cases) {
      const a = rand(sa.reduce((p, q) => p * q, 1));
      const b = rand(sb.reduce((p, q) => p * q, 1)).map((v) => v + Math.sign(v) * 0.1 + 0.05);
      const label = `[${sa}] op [${sb}]`;
      await assertNativeMatchesCpu(
        label,
        () => {
          const ta = tf.tensor(a, sa);
          const tb = tf.tensor(b, sb);
          return [ta.add(tb), ta.sub(tb), ta.mul(tb), ta.div(tb)];
        },
        0,
      );
    }
    const calls = await nativeCalls('binary', () =>
      tf.tensor(rand(2 * 3 * 17 * 5), [2, 3, 17, 5]).add(tf.tensor(rand(85), [17, 5])),
    );
    assert.equal(calls, 1, 'the native Add ran');
  });

  it('Add, Sub, Multiply on int32 wrap like the cpu kernel; int32 division goes to the cpu kernel', async () => {
    const a = ints(1003, -(2 ** 31), 2 ** 31 - 1);
    const b = ints(1003, -(2 ** 31), 2 ** 31 - 1);
    const small = ints(1003, -30000, 30000);
    for (const [sa, sb] of [
      [
        [17, 59],
        [17, 59],
      ],
      [[17, 59], [59]],
      [
        [17, 59],
        [17, 1],
      ],
      [[17, 59], []],
    ]) {
      const n = (s: number[]) => s.reduce((p, q) => p * q, 1);
      const mk = (v: Int32Array, s: number[]) => tf.tensor(v.subarray(0, n(s)), s, 'int32');
      const run = async (backend: string) => {
        await tf.setBackend(backend);
        return tf.tidy(() => {
          const outs = [
            mk(a, sa).add(mk(b, sb)),
            mk(a, sa).sub(mk(b, sb)),
            mk(small, sa).mul(mk(small, sb)),
            mk(small, sa).div(mk(small, sb).add(tf.scalar(40000, 'int32'))),
          ];
          return outs.map((t) => [t.dtype, Array.from(t.dataSync())] as const);
        });
      };
      assert.deepEqual(await run('native'), await run('cpu'), `[${sa}] op [${sb}]`);
    }
  });

  it('Sum and Mean over leading, trailing, middle and all axes, keepDims, odd sizes', async () => {
    const cases: [number[], number | number[]][] = [
      [[1003, 17], 0],
      [[3, 1025], 1],
      [[3, 1025], -1],
      [
        [24, 16, 48],
        [0, 1],
      ],
      [
        [24, 16, 48],
        [1, 2],
      ],
      [
        [5, 17, 3, 7],
        [1, 2],
      ],
      [[1, 17], 0],
      [[17], 0],
      [
        [5, 17, 3],
        [0, 1, 2],
      ],
      [
        [5, 17, 3],
        [0, 2],
      ], // not adjacent: the cpu kernel
    ];
    for (const [shape, axis] of cases) {
      const x = rand(shape.reduce((a, b) => a * b, 1));
      for (const keepDims of [false, true]) {
        await assertNativeMatchesCpu(
          `Sum/Mean [${shape}] axis ${String(axis)} keepDims ${keepDims}`,
          () => {
            const t = tf.tensor(x, shape);
            return [t.sum(axis, keepDims), t.mean(axis, keepDims)];
          },
          1e-6,
        );
      }
    }
    // int32 sums stay int32 (the cpu kernel)
    const run = async (backend: string) => {
      await tf.setBackend(backend);
      return tf.tidy(() => {
        const s = tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3], 'int32').sum(0);
        return [s.dtype, Array.from(s.dataSync())];
      });
    };
    assert.deepEqual(await run('native'), ['int32', [5, 7, 9]]);
    const calls = await nativeCalls('reduceSum', () => tf.tensor(rand(3 * 17), [3, 17]).sum(0));
    assert.equal(calls, 1, 'the native Sum ran');
  });

  it('GatherV2 along every axis, 2-D indices, float32 and int32; an index out of range is the cpu kernel error', async () => {
    const x = rand(7 * 5 * 3);
    const xi = ints(7 * 5 * 3, -100, 100);
    for (const axis of [0, 1, 2]) {
      const dim = [7, 5, 3][axis];
      const idx = ints(8, 0, dim);
      await assertNativeMatchesCpu(
        `GatherV2 axis ${axis}`,
        () => [
          tf.gather(tf.tensor(x, [7, 5, 3]), tf.tensor(idx, [2, 4], 'int32'), axis),
          tf.gather(tf.tensor(xi, [7, 5, 3], 'int32'), tf.tensor(idx, [8], 'int32'), axis),
        ],
        0,
      );
    }
    await tf.setBackend('native');
    assert.throws(
      () => tf.tidy(() => tf.gather(tf.tensor(x, [7, 15]), tf.tensor1d([0, 7], 'int32'), 0)),
      /GatherV2: the index value 7 is not in \[0, 6\]/,
    );
  });

  it('the fused AdamW update equals the per-op update on cpu to the bit, with and without decay', async () => {
    const shapes = [[17, 33], [1003], [1]];
    const w0 = shapes.map((s) => rand(s.reduce((a, b) => a * b, 1)));
    const gs = [0, 1, 2].map(() => shapes.map((s) => rand(s.reduce((a, b) => a * b, 1))));
    const run = async (backend: string) => {
      await tf.setBackend(backend);
      const params = shapes.map((s, i) => ({
        tower: 'vision' as const,
        name: `w${i}`,
        variable: new tf.LayerVariable(tf.tensor(w0[i], s), 'float32', `w${i}`),
      }));
      const opt = new AdamW({ learningRate: (s) => 1e-2 * (s + 1), weightDecay: 0.1 });
      const before = tf.memory().numTensors;
      for (const step of gs) {
        const grads = new Map(params.map((p, i) => [paramKey(p), tf.tensor(step[i], shapes[i])]));
        opt.applyGradients(params, grads);
        tf.dispose([...grads.values()]);
      }
      const values = params.map((p) => Float32Array.from(p.variable.read().dataSync()));
      const state = opt.getState();
      const moments = [...state.tensors.values()].map((t) => Float32Array.from(t.dataSync()));
      tf.dispose([...state.tensors.values()]);
      const grown = tf.memory().numTensors - before;
      opt.dispose();
      params.forEach((p) => p.variable.dispose());
      return { values, moments, grown };
    };
    let native!: Awaited<ReturnType<typeof run>>;
    const calls = await countingCalls('adamw', async () => {
      native = await run('native');
    });
    const cpu = await run('cpu');
    assert.equal(calls, 9, 'three fused updates of three parameters');
    assert.deepEqual(native.values, cpu.values);
    assert.deepEqual(native.moments, cpu.moments);
    assert.equal(native.grown, 6, 'only the moments (m and v per parameter) remain');
  });

  it('a training run of the shapes model on native follows the cpu backend (losses and weights)', async function () {
    this.timeout(600_000);
    const data = makePairs(2, 1);
    const run = async (backend: string) => {
      await tf.setBackend(backend);
      const model = seededTinyModel();
      const trainer = new Trainer(model, {
        learningRate: 1e-3,
        warmupSteps: 2,
        totalSteps: 6,
        weightDecay: 0.05,
        maxGradNorm: 1,
      });
      const history = await trainer.fit(data, { batchSize: 24, epochs: 3, progress: false });
      const weights = modelParams(model).map((p) =>
        Float32Array.from(p.variable.read().dataSync()),
      );
      trainer.dispose();
      model.dispose();
      return { losses: history.steps.map((s) => s.loss), weights };
    };
    const native = await run('native');
    const cpu = await run('cpu');
    tf.dispose([data.pixelValues, data.inputIds]);
    assert.equal(native.losses.length, 6);
    native.losses.forEach((l, i) =>
      assert.ok(
        Math.abs(l - cpu.losses[i]) <= 1e-4 * Math.abs(cpu.losses[i]),
        `step ${i}: ${l} vs ${cpu.losses[i]}`,
      ),
    );
    // Adam normalises each update to about lr, so float rounding of near-zero gradients may move a weight by up
    // to lr per step; every weight stays within 6 steps x lr of cpu's and almost all agree far closer
    let close = 0;
    let total = 0;
    native.weights.forEach((w, i) => {
      const { diff } = maxDiff(w, cpu.weights[i]);
      assert.ok(diff <= 6e-3, `weight ${i}: max diff ${diff}`);
      for (let j = 0; j < w.length; j++) if (Math.abs(w[j] - cpu.weights[i][j]) <= 1e-5) close++;
      total += w.length;
    });
    assert.ok(close / total > 0.99, `${close} of ${total} weights within 1e-5 of cpu`);
  });
});

describe('native backend: bad input to the elementwise kernels at the Node-API boundary', function () {
  let addon: NativeAddon;
  before(function () {
    addon = requireNative(this);
  });
  const f32 = (n: number) => new Float32Array(n);
  const detached = (n: number) => {
    const a = new Float32Array(n);
    structuredClone(a.buffer, { transfer: [a.buffer] });
    return a;
  };

  it('Transpose: wrong dtype, wrong length, bad perm, rank 7, zero size, detached, aliasing', () => {
    const shapes = /x \[2,3\], perm \[1,0\]/;
    const t = (x: unknown, out: unknown, shape = [2, 3], perm = [1, 0]) =>
      addon.transpose(x as Float32Array, out as Float32Array, shape, perm, 0);
    assert.throws(
      () => t(new Float64Array(6), f32(6)),
      (e: Error) =>
        /^native Transpose: x must be a Float32Array or Int32Array/.test(e.message) &&
        shapes.test(e.message),
    );
    assert.throws(
      () => t(f32(6), new Int32Array(6)),
      /native Transpose: out must be a Float32Array \(float32 tensor\) \(x \[2,3\]/,
    );
    assert.throws(
      () => t(f32(5), f32(6)),
      /native Transpose: x has 5 elements, expected 6 \(x \[2,3\], perm \[1,0\]\)/,
    );
    assert.throws(
      () => t(f32(6), f32(6), [2, 3], [1, 1]),
      /native Transpose: perm must be a permutation.*perm \[1,1\]/,
    );
    assert.throws(
      () => t(f32(6), f32(6), [2, 3], [0]),
      /native Transpose: perm must have one entry per axis/,
    );
    assert.throws(
      () => t(f32(6), f32(6), [1, 1, 1, 1, 1, 2, 3], [0, 1, 2, 3, 4, 5, 6]),
      /native Transpose: shape has 7 entries, at most 6/,
    );
    assert.throws(
      () => t(f32(0), f32(0), [0, 3], [1, 0]),
      /native Transpose: shape\[0\] must be an integer >= 1/,
    );
    assert.throws(
      () => t(detached(6), f32(6)),
      /native Transpose: x is backed by a detached ArrayBuffer/,
    );
    const x = f32(12);
    assert.throws(
      () => t(x.subarray(0, 6), x.subarray(3, 9)),
      /native Transpose: x and out share memory/,
    );
    assert.throws(
      () => t(f32(6), f32(6), [2, 3.5] as number[]),
      /native Transpose: shape\[1\] must be an integer/,
    );
  });

  it('binary: bad op, bad mode, wrong dtype, mismatched lengths, int32 division, zero size, detached, aliasing', () => {
    const b = (
      op: number,
      a: unknown,
      bb: unknown,
      out: unknown,
      outer = 2,
      inner = 3,
      ma = 0,
      mb = 1,
    ) =>
      addon.binary(
        op,
        a as Float32Array,
        bb as Float32Array,
        out as Float32Array,
        outer,
        inner,
        ma,
        mb,
      );
    assert.throws(() => b(4, f32(6), f32(3), f32(6)), /native Binary: op must be 0 \(Add\)/);
    assert.throws(
      () => b(0, f32(6), f32(3), f32(6), 2, 3, 0, 4),
      /native Add: modeA and modeB must be/,
    );
    assert.throws(
      () => b(0, f32(6), f32(2), f32(6)),
      /native Add: b has 2 elements, expected 3 \(out \[2,3\], a full of 6, b row of 3\)/,
    );
    assert.throws(
      () => b(2, f32(6), new Int32Array(3), f32(6)),
      /native Multiply: b must be a Float32Array/,
    );
    assert.throws(
      () => b(3, new Int32Array(6), new Int32Array(3), new Int32Array(6)),
      /native RealDiv: a must be a Float32Array \(int32 division/,
    );
    assert.throws(
      () => b(1, f32(6), f32(3), f32(6), 0, 3),
      /native Sub: outer must be an integer >= 1/,
    );
    assert.throws(
      () => b(0, detached(6), f32(3), f32(6)),
      /native Add: a is backed by a detached ArrayBuffer/,
    );
    const a = f32(6);
    assert.throws(() => b(0, a, f32(3), a), /native Add: a and out share memory/);
  });

  it('reduceSum and adamw: wrong lengths, dtypes, zero size, aliasing name the kernel and shapes', () => {
    assert.throws(
      () => addon.reduceSum(f32(10), f32(2), 2, 3, 2, false),
      /native Sum: x has 10 elements, expected 12 \(x \[2,3,2\] reduced over axis 1\)/,
    );
    assert.throws(
      () => addon.reduceSum(f32(12), f32(3), 2, 3, 2, true),
      /native Mean: out has 3 elements, expected 4/,
    );
    assert.throws(
      () => addon.reduceSum(f32(12), f32(4), 2, 3, 2, 1 as unknown as boolean),
      /native Sum: mean must be a boolean/,
    );
    const n = 5;
    const ok = () => [f32(n), f32(n), f32(n), f32(n), f32(n), f32(n), f32(n)];
    const step = (arrs: Float32Array[], size = n) =>
      addon.adamw(
        arrs[0],
        arrs[1],
        arrs[2],
        arrs[3],
        arrs[4],
        arrs[5],
        arrs[6],
        size,
        1e-3,
        0.9,
        0.999,
        1e-8,
        0.1,
        0.001,
        0,
      );
    const bad = ok();
    bad[1] = f32(4);
    assert.throws(
      () => step(bad),
      /native AdamW: grad has 4 elements, expected 5 \(parameter of 5 elements\)/,
    );
    const same = ok();
    same[4] = same[0];
    assert.throws(() => step(same), /native AdamW: an output and an input share memory/);
    assert.throws(() => step(ok(), 0), /native AdamW: size must be an integer >= 1/);
    // the TF.js kernel checks shapes before the addon
    return tf.setBackend('native').then(() => {
      const p = new tf.LayerVariable(tf.zeros([2, 3]), 'float32', 'p');
      const opt = new AdamW();
      assert.throws(
        () =>
          opt.applyGradients(
            [{ tower: 'vision', name: 'p', variable: p }],
            new Map([['vision:p', tf.zeros([3, 2])]]),
          ),
        /native AdamW: grad \[3,2\] must have the parameter's shape \[2,3\]/,
      );
      opt.dispose();
      p.dispose();
    });
  });
});
