import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import {
  Siglip2VisionEmbeddings,
  antialiasBilinearMatrix,
  antialiasBilinearWeights,
  positionResizeMatrix,
} from '../../src/layers/index.js';
import { seededRandom as rng } from '../../src/util/random.js';

/**
 * Independent float64 reference of `F.interpolate(bilinear, align_corners=False, antialias=True)` on one channel,
 * written directly: every output pixel is a normalised sum over *all* input pixels of a 2-D triangle filter whose
 * width along an axis is max(1, in/out) input pixels.
 */
function referenceResize(
  table: Float64Array,
  inH: number,
  inW: number,
  outH: number,
  outW: number,
): Float64Array {
  const sy = inH / outH;
  const sx = inW / outW;
  const wy = Math.max(1, sy);
  const wx = Math.max(1, sx);
  const tri = (d: number) => Math.max(0, 1 - Math.abs(d));
  const out = new Float64Array(outH * outW);
  for (let y = 0; y < outH; y++) {
    const cy = (y + 0.5) * sy;
    for (let x = 0; x < outW; x++) {
      const cx = (x + 0.5) * sx;
      let sum = 0;
      let norm = 0;
      for (let gy = 0; gy < inH; gy++) {
        for (let gx = 0; gx < inW; gx++) {
          const w = tri((gy + 0.5 - cy) / wy) * tri((gx + 0.5 - cx) / wx);
          sum += w * table[gy * inW + gx];
          norm += w;
        }
      }
      out[y * outW + x] = sum / norm;
    }
  }
  return out;
}

function randomTable(next: () => number, n: number): Float64Array {
  // Gaussian-ish values of the size learned position embeddings have.
  return Float64Array.from({ length: n }, () => (next() + next() + next() - 1.5) * 2);
}

function applyMatrix(m: Float64Array, table: Float64Array, rows: number): Float64Array {
  const n = table.length;
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let k = 0; k < n; k++) s += m[r * n + k] * table[k];
    out[r] = s;
  }
  return out;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Geometries: edge cases first, then random grids 1..40 (up, down, mixed, identity). */
function geometries(next: () => number, count: number): [number, number, number, number][] {
  const fixed: [number, number, number, number][] = [
    [1, 1, 1, 1],
    [1, 1, 7, 3],
    [4, 4, 1, 1],
    [4, 4, 1, 9],
    [4, 4, 9, 1],
    [1, 12, 1, 5],
    [12, 1, 30, 1],
    [16, 16, 16, 16],
    [16, 16, 32, 32],
    [16, 16, 8, 8],
    [16, 16, 3, 40],
    [16, 16, 40, 25],
    [16, 16, 7, 13],
    [40, 40, 1, 40],
    [40, 3, 17, 39],
  ];
  const out = [...fixed];
  const dim = () => 1 + Math.floor(next() * 40);
  for (let i = 0; i < count; i++) out.push([dim(), dim(), dim(), dim()]);
  return out;
}

describe('NaFlex antialiased bilinear resize', () => {
  it('rows of the 1-D weights sum to 1, and the identity resize is the identity', () => {
    for (const [a, b] of [
      [1, 1],
      [5, 2],
      [2, 5],
      [16, 40],
      [40, 16],
      [37, 37],
    ]) {
      const w = antialiasBilinearWeights(a, b);
      for (let i = 0; i < b; i++) {
        let s = 0;
        for (let j = 0; j < a; j++) s += w[i * a + j];
        assert.ok(Math.abs(s - 1) < 1e-12, `${a}->${b} row ${i} sums to ${s}`);
      }
    }
    const id = antialiasBilinearWeights(9, 9);
    for (let i = 0; i < 9; i++)
      for (let j = 0; j < 9; j++) assert.equal(id[i * 9 + j], i === j ? 1 : 0);
  });

  it('matches hand-computed PyTorch weights (4 -> 2 downscale widens the triangle; 2 -> 4 is bilinear)', () => {
    // 4 -> 2: scale 2, centre 1.0: inputs 0, 1, 2 get 0.75, 0.75, 0.25 before normalising.
    const down = antialiasBilinearWeights(4, 2);
    assert.ok(maxAbsDiff(down.subarray(0, 4), [3 / 7, 3 / 7, 1 / 7, 0]) < 1e-15);
    assert.ok(maxAbsDiff(down.subarray(4, 8), [0, 1 / 7, 3 / 7, 3 / 7]) < 1e-15);
    // 2 -> 4: source coordinates -0.25 (clamped), 0.25, 0.75, 1.25 (clamped).
    const up = antialiasBilinearWeights(2, 4);
    assert.ok(maxAbsDiff(up, [1, 0, 0.75, 0.25, 0.25, 0.75, 0, 1]) < 1e-15);
  });

  it('the float64 interpolation matrix equals a direct triangle-filter loop on 215 random geometries', () => {
    const next = rng(20250221);
    let worst = 0;
    for (const [inH, inW, outH, outW] of geometries(next, 200)) {
      const table = randomTable(next, inH * inW);
      const m = antialiasBilinearMatrix(inH, inW, outH, outW);
      const got = applyMatrix(m, table, outH * outW);
      const want = referenceResize(table, inH, inW, outH, outW);
      const d = maxAbsDiff(got, want);
      worst = Math.max(worst, d);
      assert.ok(d < 1e-12, `${inH}x${inW} -> ${outH}x${outW}: max abs diff ${d}`);
    }
    assert.ok(worst < 1e-12);
  });

  it('the layer resizes the position grid per image (mixed shapes in one batch, padding = row 0) to 1e-6', () => {
    const next = rng(7);
    for (const grid of [1, 2, 4, 5, 16]) {
      const d = 3;
      const layer = new Siglip2VisionEmbeddings({
        hiddenSize: d,
        patchSize: 1,
        numChannels: 1,
        numPatches: grid * grid,
      });
      layer.build([null, null, 1]);
      const table = randomTable(next, grid * grid * d);
      tf.tidy(() => {
        layer.positionEmbedding.write(tf.tensor2d(Float32Array.from(table), [grid * grid, d]));
      });
      const shapes: [number, number][] = [
        [1, 1],
        [1, 40],
        [40, 1],
        [grid, grid],
        [2 * grid, grid + 1],
        [Math.max(1, grid - 1), 2 * grid],
        [1 + Math.floor(next() * 40), 1 + Math.floor(next() * 40)],
        [1 + Math.floor(next() * 40), 1 + Math.floor(next() * 40)],
      ];
      const maxPatches = Math.max(...shapes.map(([h, w]) => h * w)) + 3;
      const st = tf.tensor2d(shapes, [shapes.length, 2], 'int32');
      const out = layer.resizedPositionEmbeddings(st, maxPatches);
      assert.deepEqual(out.shape, [shapes.length, maxPatches, d]);
      const got = out.dataSync();
      shapes.forEach(([h, w], i) => {
        for (let c = 0; c < d; c++) {
          const channel = Float64Array.from({ length: grid * grid }, (_, k) => table[k * d + c]);
          const want = referenceResize(channel, grid, grid, h, w);
          for (let r = 0; r < maxPatches; r++) {
            const v = got[(i * maxPatches + r) * d + c];
            const ref = want[r < h * w ? r : 0];
            assert.ok(
              Math.abs(v - ref) < 1e-6,
              `grid ${grid} -> ${h}x${w}, row ${r}, channel ${c}: ${v} vs ${ref}`,
            );
          }
        }
      });
      tf.dispose([st, out]);
      for (const w of layer.weights) w.dispose();
    }
  });

  it('caches the float32 matrices per (grid, h, w)', () => {
    const a = positionResizeMatrix(16, 7, 9);
    assert.equal(positionResizeMatrix(16, 7, 9), a);
    assert.notEqual(positionResizeMatrix(16, 9, 7), a);
    assert.equal(a.length, 7 * 9 * 256);
  });

  it('rejects sizes that are not positive integers', () => {
    assert.throws(() => antialiasBilinearWeights(0, 3), /positive integers/);
    assert.throws(() => antialiasBilinearWeights(4, 2.5), /positive integers/);
  });
});
