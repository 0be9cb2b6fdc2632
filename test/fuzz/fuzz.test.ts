// A few hundred seeded mutants of the tiny checkpoint's files through every reader (bench/fuzz/targets.ts);
// `npm run fuzz -- --count N --seed S` runs more.
import { strict as assert } from 'node:assert';
import { type MutantResult, ReaderFuzzer, TARGETS } from '../../bench/fuzz/targets.js';
import { useTestBackend } from '../helpers/backend.js';
import { fixture } from '../helpers/fixtures.js';

const COUNT = 400;
const SEED = 20261128;

describe('reader fuzzer (seeded mutants of siglip_tiny)', function () {
  this.timeout(120000);
  let fuzzer: ReaderFuzzer;
  const results: MutantResult[] = [];
  const warn = console.warn;

  before(async function () {
    await useTestBackend('cpu');
    console.warn = () => undefined; // mutated configs leave checkpoint tensors unused
    fuzzer = await ReaderFuzzer.prepare({ tinyDir: fixture('siglip_tiny') });
    for (let i = 0; i < COUNT; i++) results.push(await fuzzer.run(SEED, i));
  });
  after(async () => {
    console.warn = warn;
    await fuzzer?.cleanup();
  });

  it(`${COUNT} mutants: each loads what the file holds or is refused with a typed error`, function () {
    const failed = results.filter((r) => r.outcome === 'failed' || r.what.includes('[LEAK'));
    assert.deepEqual(
      failed.map((r) => `mutant ${r.index} (${r.target}) ${r.what}: ${r.detail}`),
      [],
    );
  });

  it('every target is exercised, with mutants both loaded and refused', function () {
    for (const t of TARGETS) {
      const of = results.filter((r) => r.target === t);
      assert.ok(
        of.some((r) => r.outcome === 'loaded'),
        `${t}: no mutant loaded`,
      );
      assert.ok(
        of.some((r) => r.outcome === 'refused'),
        `${t}: no mutant refused`,
      );
    }
  });

  it('no mutant takes long (no hang)', function () {
    const slowest = results.reduce((a, b) => (a.ms > b.ms ? a : b));
    assert.ok(slowest.ms < 5000, `mutant ${slowest.index} took ${slowest.ms} ms: ${slowest.what}`);
  });

  it('the same seed gives the same mutants', async function () {
    for (const i of [0, 7, 123]) {
      const again = await fuzzer.run(SEED, i);
      assert.equal(again.what, results[i].what);
      assert.equal(again.outcome, results[i].outcome);
    }
  });
});
