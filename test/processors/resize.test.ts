import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readSafetensors } from '../../src/io/safetensors.js';
import { resizeBilinearPIL } from '../../src/processors/resize.js';
import { REPO_ROOT } from '../helpers/fixtures.js';

describe('resizeBilinearPIL', () => {
  it('matches Pillow 9.4 BILINEAR byte for byte on up/down/extreme-aspect cases (test/data, made by PIL)', async () => {
    const t = await readSafetensors(join(REPO_ROOT, 'test/data/pil_bilinear_cases.safetensors'));
    let n = 0;
    for (let i = 0; t.has(`case${i}.in`); i++, n++) {
      const a = t.get(`case${i}.in`)!;
      const e = t.get(`case${i}.out`)!;
      const [h, w] = a.shape;
      const [h2, w2] = e.shape;
      const got = resizeBilinearPIL(a.data as Uint8Array, w, h, 3, w2, h2);
      let diff = 0;
      for (let j = 0; j < got.length; j++) diff = Math.max(diff, Math.abs(got[j] - e.data[j]));
      assert.equal(diff, 0, `case${i}: ${h}x${w} -> ${h2}x${w2} differs by up to ${diff}`);
    }
    assert.equal(n, 12);
  });

  it('returns a copy for the identity size and works on one channel', () => {
    const src = Uint8Array.from([1, 2, 3, 4, 5, 6]);
    const same = resizeBilinearPIL(src, 3, 2, 1, 3, 2);
    assert.deepEqual([...same], [...src]);
    assert.notEqual(same, src);
    // 2 -> 1 pixel: the triangle filter widened to support 2 averages both: (10 + 20) / 2 = 15
    assert.deepEqual([...resizeBilinearPIL(Uint8Array.from([10, 20]), 2, 1, 1, 1, 1)], [15]);
  });

  it('rejects bad sizes and mismatched data naming the argument', () => {
    assert.throws(
      () => resizeBilinearPIL(new Uint8Array(0), 0, 1, 3, 4, 4),
      /width must be a positive integer, got 0/,
    );
    assert.throws(
      () => resizeBilinearPIL(new Uint8Array(3), 1, 1, 3, 4, 0),
      /outHeight must be a positive integer/,
    );
    assert.throws(
      () => resizeBilinearPIL(new Uint8Array(5), 2, 1, 3, 4, 4),
      /data has 5 values, expected 2x1x3 = 6/,
    );
  });
});
