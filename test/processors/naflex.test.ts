import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { naflexTargetSize } from '../../src/processors/image.js';
import { fixture } from '../helpers/fixtures.js';
import { seededRandom as rng } from '../../src/util/random.js';

/**
 * The size search of HF's Siglip2ImageProcessor (get_image_size_for_max_num_patches), written independently of
 * the library:
 * binary search on s in [1e-6, 100] until the interval is narrower than 1e-5; each side becomes
 * max(p, ceil(side*s/p)*p); keep the largest s whose patch count fits.
 */
function referenceSize(h: number, w: number, p: number, maxPatches: number): [number, number] {
  const scaled = (side: number, s: number): number => {
    const c = Math.ceil((side * s) / p) * p;
    return c > p ? c : p;
  };
  let low = 1e-6;
  let high = 100.0;
  while (high - low >= 1e-5) {
    const mid = (low + high) / 2;
    const th = scaled(h, mid);
    const tw = scaled(w, mid);
    if ((th / p) * (tw / p) <= maxPatches) low = mid;
    else high = mid;
  }
  return [scaled(h, low), scaled(w, low)];
}

describe('NaFlex target size (naflexTargetSize)', () => {
  it('gives the fixture target sizes for every image and max_num_patches', () => {
    const cases = JSON.parse(
      readFileSync(fixture('image_preprocessing', 'cases.json'), 'utf8'),
    ) as {
      images: Record<string, unknown>[];
    };
    let n = 0;
    for (const img of cases.images) {
      for (const [key, v] of Object.entries(img)) {
        const m = /^naflex(\d+)$/.exec(key);
        if (!m) continue;
        const want = (v as { target_size_hw: [number, number] }).target_size_hw;
        assert.deepEqual(
          naflexTargetSize(img.height as number, img.width as number, 16, Number(m[1])),
          want,
          `${img.file as string} ${key}`,
        );
        n++;
      }
    }
    assert.equal(n, 8);
  });

  it('agrees with a direct re-implementation on random sizes, including 1xN and Nx1 grids', () => {
    const r = rng(1234);
    const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
    for (let i = 0; i < 3000; i++) {
      const p = [14, 16, 32][int(0, 2)];
      const maxP = [1, 2, 3, 16, 64, 196, 256, 576, 729, 1024][int(0, 9)];
      let h: number;
      let w: number;
      switch (i % 4) {
        case 0:
          [h, w] = [int(1, 4000), int(1, 4000)];
          break;
        case 1: // extremely wide: the grid should collapse to 1 row
          [h, w] = [int(1, 8), int(1000, 100000)];
          break;
        case 2: // extremely tall
          [h, w] = [int(1000, 100000), int(1, 8)];
          break;
        default: // tiny images are upscaled
          [h, w] = [int(1, 40), int(1, 40)];
      }
      const got = naflexTargetSize(h, w, p, maxP);
      assert.deepEqual(got, referenceSize(h, w, p, maxP), `h=${h} w=${w} p=${p} max=${maxP}`);
      const [th, tw] = got;
      assert.ok(th % p === 0 && tw % p === 0 && th >= p && tw >= p);
      assert.ok(
        (th / p) * (tw / p) <= maxP,
        `h=${h} w=${w} p=${p} max=${maxP}: ${th}x${tw} too many patches`,
      );
    }
  });

  it('gives a 1 x N grid for a 1-pixel-high strip and N x 1 for a 1-pixel-wide one', () => {
    assert.deepEqual(naflexTargetSize(1, 100000, 16, 256), [16, 4096]);
    assert.deepEqual(naflexTargetSize(100000, 1, 16, 256), [4096, 16]);
    assert.deepEqual(naflexTargetSize(5, 5, 16, 1), [16, 16]);
  });

  it('rejects bad arguments by name', () => {
    assert.throws(
      () => naflexTargetSize(0, 10, 16, 256),
      /height must be a positive integer, got 0/,
    );
    assert.throws(
      () => naflexTargetSize(10, 10, 16, 0),
      /maxNumPatches must be a positive integer/,
    );
  });
});
