import { strict as assert } from 'node:assert';
import * as tf from '@tensorflow/tfjs';
import { releasingGradients } from '../../src/internals/tfjs.js';

type SaveFn = (tensors: tf.Tensor[]) => void;

/** TF.js's own Engine.gradients, the reference. */
function stockGradients(
  f: () => tf.Tensor,
  xs: tf.Tensor[],
  dy?: tf.Tensor,
): { value: tf.Tensor; grads: (tf.Tensor | null)[] } {
  const e = tf.engine() as unknown as {
    gradients(
      f: () => tf.Tensor,
      xs: tf.Tensor[],
      dy?: tf.Tensor,
      allow?: boolean,
    ): { value: tf.Tensor; grads: (tf.Tensor | null)[] };
  };
  return e.gradients(f, xs, dy, true);
}

/** An op whose gradient hands the same dy object to both inputs. */
const sameObjectTwice = tf.customGrad((...args: (tf.Tensor | SaveFn)[]) => {
  const [a, b] = args as [tf.Tensor, tf.Tensor];
  return { value: a.add(b), gradFunc: (dy: tf.Tensor) => [dy, dy] };
});

/** A graph with fan-out (accumulated gradients), views, a branch y does not use, and shared gradient objects. */
function graph(x: tf.Tensor, w: tf.Tensor, v: tf.Tensor): tf.Tensor {
  const h = tf.tanh(tf.matMul(x, w));
  const r = h.reshape([-1]).reshape(h.shape);
  const s = tf.softmax(r.mul(v), -1);
  tf.exp(x).sum(); // not on the path to y
  const both = sameObjectTwice(s, h);
  return both.mul(x.sum(1, true)).add(h.square()).sum();
}

describe('releasingGradients (internals/tape)', () => {
  let x: tf.Tensor;
  let w: tf.Tensor;
  let v: tf.Tensor;
  let previous: string | undefined;
  before(async () => {
    // The arithmetic of the cpu backend is the reference here; other suites leave other backends in force.
    previous = (tf.getBackend() as string | null) ?? undefined;
    await tf.setBackend('cpu');
    x = tf.randomNormal([5, 7], 0, 1, 'float32', 1);
    w = tf.randomNormal([7, 3], 0, 1, 'float32', 2);
    v = tf.randomNormal([3], 0, 1, 'float32', 3);
  });
  after(async () => {
    tf.dispose([x, w, v]);
    if (previous !== undefined) await tf.setBackend(previous);
  });

  it("gives TF.js's gradients bit for bit, and leaves no tensor behind", () => {
    const ref = stockGradients(() => graph(x, w, v), [x, w, v]);
    const before = tf.memory().numTensors;
    const got = releasingGradients(() => graph(x, w, v), [x, w, v]);
    assert.equal(tf.memory().numTensors, before + 4, 'value and three gradients, nothing else');
    assert.deepEqual(got.value.dataSync(), ref.value.dataSync());
    got.grads.forEach((g, i) => {
      assert.ok(g && ref.grads[i]);
      assert.deepEqual(
        Array.from(g.dataSync()),
        Array.from(ref.grads[i]!.dataSync()),
        `gradient ${i}`,
      );
    });
    tf.dispose([
      got.value,
      ref.value,
      ...(got.grads as tf.Tensor[]),
      ...(ref.grads as tf.Tensor[]),
    ]);
  });

  it("leaves the caller's dy alone, and returns null for an x y does not depend on", () => {
    const dy = tf.scalar(2);
    const unused = tf.ones([2]);
    const got = releasingGradients(() => x.square().sum(), [x, unused], dy, true);
    assert.equal(dy.isDisposed, false);
    assert.equal(got.grads[1], null);
    const expected = x.mul(4);
    assert.ok(tf.max(tf.abs(got.grads[0]!.sub(expected))).dataSync()[0] === 0);
    tf.dispose([dy, unused, got.value, got.grads[0]!, expected]);
  });

  it('frees what the backward pass has finished with (a chain of 20 ops)', () => {
    // The probe's gradient runs last: it reads how many bytes are alive with the whole chain behind it.
    let aliveAtEnd = 0;
    const probe = tf.customGrad((...args: (tf.Tensor | SaveFn)[]) => {
      const [a] = args as [tf.Tensor];
      return {
        value: a.clone(),
        gradFunc: (dy: tf.Tensor) => {
          aliveAtEnd = tf.memory().numBytes;
          return dy.clone();
        },
      };
    });
    const big = tf.randomNormal([256, 256], 0, 0.1, 'float32', 4);
    const chain = () => {
      let h = probe(big);
      for (let i = 0; i < 20; i++) h = tf.tanh(h.mul(1.01));
      return h.sum();
    };
    const base = tf.memory().numBytes;
    const stock = stockGradients(chain, [big]);
    const stockAlive = aliveAtEnd - base;
    const ours = releasingGradients(chain, [big]);
    const oursAlive = aliveAtEnd - base;
    const tensorBytes = 256 * 256 * 4;
    // TF.js keeps each op's saved tensors and each intermediate gradient: about 60 tensors of the chain's size.
    assert.ok(stockAlive > 40 * tensorBytes, `stock: ${stockAlive / tensorBytes} tensors alive`);
    assert.ok(oursAlive < 6 * tensorBytes, `releasing: ${oursAlive / tensorBytes} tensors alive`);
    assert.deepEqual(ours.grads[0]!.dataSync(), stock.grads[0]!.dataSync());
    tf.dispose([
      big,
      stock.value,
      ours.value,
      ...(stock.grads as tf.Tensor[]),
      ...(ours.grads as tf.Tensor[]),
    ]);
  });

  it("keeps TF.js's behaviour for higher-order gradients", () => {
    const t = tf.tensor1d([0.5, -2, 3]);
    const second = tf.grad((u: tf.Tensor) => {
      const g = releasingGradients(() => u.pow(3).sum(), [u]).grads[0]!;
      return g.sum();
    })(t);
    assert.deepEqual(Array.from(second.dataSync()), [3, -12, 18]);
    tf.dispose([t, second]);
  });

  it("raises TF.js's errors: no path from x to y, dy of the wrong dtype", () => {
    const lone = tf.ones([2]);
    assert.throws(
      () => releasingGradients(() => x.sum(), [lone]),
      /Cannot compute gradient of y=f\(x\) with respect to x/,
    );
    assert.throws(
      () => releasingGradients(() => x.sum(), [x], tf.scalar(1, 'int32')),
      /dy must have 'float32' dtype, but has 'int32'/,
    );
    lone.dispose();
  });
});
