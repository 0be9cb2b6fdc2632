import { strict as assert } from 'node:assert';
import { random, requireNative, withGemm } from './helpers.js';

const MiB = 1 << 20;

describe('native attention: scratch kept between calls', () => {
  it('frees a long sequence’s per-head scores and batched probabilities when the call ends, keeps short ones', async function () {
    this.timeout(60_000);
    const addon = requireNative(this);
    const threads = addon.info().threads;
    const rand = random(7);
    const run = (n: number) => {
      const [b, h, d] = [1, 2, 8];
      const q = rand(b * n * h * d);
      const k = rand(b * n * h * d);
      const v = rand(b * n * h * d);
      const out = new Float32Array(b * n * h * d).fill(NaN);
      addon.attention(q, k, v, null, out, b, n, n, h, d, 0.125);
      assert.ok(
        out.every((x) => Number.isFinite(x)),
        `attention over ${n} tokens left outputs unwritten`,
      );
    };
    const held = () => addon.cacheStats().attentionScratchBytes;
    // The per-head path (one (image, head) per thread, OpenBLAS products) needs AVX2 + FMA: every thread of the
    // team holds its own Nq x Nk scores, and keeps them only up to 4 MiB.
    if (/^AVX(2|-512)/.test(addon.info().isa)) {
      await withGemm('openblas', () => {
        run(1100); // 4.6 MiB of scores a thread: freed at the end
        const base = held();
        run(200); // 156 KiB a thread: kept
        assert.equal(
          held() - base,
          threads * 200 * 200 * 4,
          'short-sequence scores kept per thread',
        );
        run(1100);
        assert.equal(held(), base, 'a long sequence left its per-head scores behind');
      });
    }
    // The batched path (oneDNN): [1, 2, 3000, 3000] probabilities are 72 MB, over the 64 MiB kept per buffer; the
    // backward pass's gradient buffer, kept from earlier calls, is at most 64 MiB.
    await withGemm('onednn', () => {
      run(3000);
      assert.ok(held() <= 64 * MiB, `batched probabilities kept after the call: ${held()} bytes`);
    });
  });
});
