// Memory-mapped weights (native/src/mmap.cc, src/loader/mapped_group.ts): the addon's mapping of file ranges, and
// loadSiglip's float32 weights as views of the shard files on the native and cpu backends.
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { promises as fsp, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { convertCheckpoint } from '../../converter/convert.js';
import '../../src/index.js';
import { formatComparisons } from '../../src/check/compare.js';
import { readCases, toleranceOf } from '../../src/check/fixture.js';
import type { NativeAddon } from '../../src/backends/native/index.js';
import { cpuValues, MathBackendCPU } from '../../src/internals/cpu_backend.js';
import { mappable } from '../../src/loader/file_mapping.js';
import { type LoadedSiglipModel, loadSiglip } from '../../src/loader/index.js';
import { ArtifactFormatError, IntegrityError } from '../../src/util/errors.js';
import { compareWithFixture, tempDir } from '../converter/helpers.js';
import { useTestBackend } from '../helpers/backend.js';
import { fixture } from '../helpers/fixtures.js';
import { tinyCheckpointWithTokenizer } from '../pipeline/helpers.js';
import { requireNative, withGemm } from './helpers.js';
import { gc } from '../helpers/gc.js';

/** Runs GC until finalizers (which unmap) have run: Node defers N-API finalizers to the event loop. */
async function collect(): Promise<void> {
  for (let i = 0; i < 4; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
}

/** Lines of /proc/self/maps that map `path`. */
function mapsOf(path: string): number {
  return readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .filter((l) => l.includes(path)).length;
}

/** Resident bytes of this process's mappings of `path` (/proc/self/smaps). */
function rssOf(path: string): number {
  let inside = false;
  let kb = 0;
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) inside = line.endsWith(path);
    else if (inside && line.startsWith('Rss:')) kb += Number(line.split(/\s+/)[1]);
  }
  return kb * 1024;
}

/** Every weight of a loaded model's towers by name, copied out. */
function weightValues(model: LoadedSiglipModel): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [tower, m] of [
    ['vision', model.vision?.model],
    ['text', model.text?.model],
    ['scores', model.scores],
  ] as const) {
    for (const w of m?.weights ?? []) {
      out.set(`${tower}/${w.originalName}`, Float32Array.from(w.read().dataSync()));
    }
  }
  return out;
}

/** Whether two arrays hold the same bits. */
function sameBits(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return x.every((v, i) => v === y[i]);
}

describe('native: memory-mapped weight files', function () {
  this.timeout(300000);
  let addon: NativeAddon;
  let root: string;

  before(function () {
    addon = requireNative(this);
    root = tempDir('mmap');
  });
  after(() => {
    if (root) rmSync(root, { recursive: true, force: true });
  });

  describe('addon mapFiles', () => {
    let a: string;
    let b: string;
    let bytes: Buffer;
    const page = () => addon.mappedStats().pageSize;

    before(() => {
      bytes = randomBytes(3 * page() + 1000);
      a = join(root, 'a.bin');
      b = join(root, 'b.bin');
      writeFileSync(a, bytes.subarray(0, 2 * page()));
      writeFileSync(b, bytes.subarray(2 * page()));
    });

    it('maps a range of one file and ranges continuing across files, bit for bit', () => {
      const one = new Uint8Array(addon.mapFiles([a], [12], [100], 4));
      assert.deepEqual(Buffer.from(one), bytes.subarray(12, 112));
      const start = page() + 8;
      const two = new Uint8Array(
        addon.mapFiles([a, b], [start, 0], [page() - 8, page() + 1000], 4),
      );
      assert.deepEqual(Buffer.from(two), bytes.subarray(start));
      assert.ok(addon.isMapped(two));
      assert.ok(!addon.isMapped(new Float32Array(4)));
    });

    it('refuses bad ranges with errors naming the file', () => {
      const cases: [() => unknown, RegExp][] = [
        [() => addon.mapFiles([a], [2], [16], 4), /a\.bin: offset 2 is not a multiple of 4 bytes/],
        [
          () => addon.mapFiles([a], [0], [2 * page() + 4], 4),
          /a\.bin: file is 8192 bytes, bytes \[0, 8196\) are beyond its end|a\.bin: file is \d+ bytes/,
        ],
        [
          () => addon.mapFiles([a, b], [0, 4], [2 * page(), 16], 4),
          /b\.bin: cannot continue the mapping of .*a\.bin/,
        ],
        [
          () => addon.mapFiles([a, b], [0, 0], [page() + 4, 16], 4),
          /b\.bin: cannot continue the mapping/,
        ],
        [() => addon.mapFiles([join(root, 'none.bin')], [0], [4], 4), /none\.bin: cannot open/],
        [() => addon.mapFiles([a], [0], [6], 4), /6 bytes are not a whole number of 4-byte values/],
        [() => addon.mapFiles([a], [0], [0], 4), /length must be an integer >= 1/],
        [() => addon.mapFiles([], [], [], 4), /no file to map/],
        [() => addon.mapFiles([a], [0, 4], [4], 4), /differ in length/],
      ];
      for (const [f, re] of cases) assert.throws(f, re);
    });

    it('agrees with the loader on what can be mapped', () => {
      const p = page();
      assert.ok(mappable([{ rel: 'a', offset: 12, length: 100 }], 4, p));
      assert.ok(!mappable([{ rel: 'a', offset: 2, length: 100 }], 4, p));
      assert.ok(
        mappable(
          [
            { rel: 'a', offset: p + 8, length: p - 8 },
            { rel: 'b', offset: 0, length: 5 * 4 },
          ],
          4,
          p,
        ),
      );
      assert.ok(
        !mappable(
          [
            { rel: 'a', offset: 0, length: p + 4 },
            { rel: 'b', offset: 0, length: 16 },
          ],
          4,
          p,
        ),
      );
    });

    it('unmaps when the buffer is garbage-collected', async () => {
      await collect();
      const before = addon.mappedStats();
      const beforeMaps = mapsOf(a);
      (() => {
        for (let i = 0; i < 50; i++) addon.mapFiles([a], [0], [2 * page()], 4);
      })();
      assert.equal(addon.mappedStats().regions, before.regions + 50);
      assert.equal(mapsOf(a), beforeMaps + 50);
      await collect();
      assert.deepEqual(addon.mappedStats(), before);
      assert.equal(mapsOf(a), beforeMaps);
    });

    it('releasePages drops unwritten pages only (a written page is kept, never lost)', () => {
      const v = new Uint8Array(addon.mapFiles([a], [0], [2 * page()], 1));
      let sum = 0;
      for (let i = 0; i < v.length; i += 512) sum += v[i];
      assert.ok(sum >= 0);
      assert.equal(addon.releasePages(v), 2 * page());
      assert.deepEqual(Buffer.from(v), bytes.subarray(0, 2 * page())); // faulted in again from the file
      v[10] = v[10] ^ 0xff;
      assert.equal(addon.releasePages(v), 0);
      assert.equal(v[10], bytes[10] ^ 0xff);
      assert.equal(readFileSync(a)[10], bytes[10], 'a private mapping never writes the file');
      assert.equal(addon.releasePages(new Float32Array(4096)), 0);
    });
  });

  describe('loadSiglip', () => {
    const dirs: Record<string, string> = {};

    before(async () => {
      const hf = tinyCheckpointWithTokenizer(join(root, 'hf'));
      // 4 MiB: every weight in one shard; 64 KiB (16 pages): weights span shards on page boundaries; 5000 bytes:
      // weights spanning shards cannot be mapped and are read.
      // uint8: quantized weights are decoded as before; float32 ones after an odd-sized one are misaligned and read.
      for (const [name, shardBytes, dtype] of [
        ['4m', 4 * 1024 * 1024, 'float32'],
        ['64k', 64 * 1024, 'float32'],
        ['odd', 5000, 'float32'],
        ['u8', 64 * 1024, 'uint8'],
      ] as const) {
        dirs[name] = join(root, `tiny-${name}`);
        await convertCheckpoint(hf, dirs[name], { shardBytes, dtype });
      }
    });

    afterEach(async () => {
      await tf.setBackend('native');
    });

    for (const backend of ['native', 'cpu']) {
      it(`float32 weights are views of the files and equal the readFile load bit for bit (${backend})`, async () => {
        await tf.setBackend(backend);
        for (const [name, dir] of Object.entries(dirs)) {
          const plain = await loadSiglip(dir, { mmap: false });
          const mapped = await loadSiglip(dir, { mmap: true });
          try {
            assert.equal(plain.weightStorage.mappedBytes, 0);
            const total = plain.weightStorage.copiedBytes;
            assert.equal(
              mapped.weightStorage.mappedBytes + mapped.weightStorage.copiedBytes,
              total,
            );
            assert.ok(mapped.weightStorage.mappedBytes > 0, `${name}: nothing mapped`);
            const partly = name === 'odd' || name === 'u8';
            if (!partly) {
              assert.equal(mapped.weightStorage.mappedBytes, total, `${name}: all mapped`);
            } else {
              assert.ok(mapped.weightStorage.copiedBytes > 0, `${name}: some weights read`);
            }
            const want = weightValues(plain);
            const got = weightValues(mapped);
            assert.deepEqual([...got.keys()], [...want.keys()]);
            for (const [k, v] of want) assert.ok(sameBits(got.get(k)!, v), `${name}: ${k} differs`);
            // The values are the mapping itself, not a copy (with 5000-byte shards, only weights inside one shard).
            const views = mapped.text!.model.weights.map((w) =>
              addon.isMapped(cpuValues(tf.backend() as MathBackendCPU, w.read())!),
            );
            if (partly) assert.ok(views.some((v) => v) && !views.every((v) => v));
            else
              assert.ok(
                views.every((v) => v),
                `${name}: a text weight is not mapped`,
              );
          } finally {
            plain.dispose();
            mapped.dispose();
          }
        }
      });
    }

    it('a mapped model reproduces the fixture on native, verified and not', async () => {
      await tf.setBackend('native');
      const tolerance = toleranceOf(await readCases(fixture('siglip_tiny')));
      for (const verify of [true, false]) {
        const model = await loadSiglip(dirs['64k'], { mmap: true, verify });
        try {
          assert.equal(model.verification, verify ? 'verified' : 'skipped');
          const rows = await compareWithFixture(model, tolerance);
          assert.ok(rows.length === 8 && rows.every((r) => r.ok), formatComparisons(rows));
        } finally {
          model.dispose();
        }
      }
    });

    it('training steps (Adam) on mapped weights equal those on read weights, bit for bit', async () => {
      await tf.setBackend('native');
      const plain = await loadSiglip(dirs['64k'], { mmap: false, towers: 'text' });
      const mapped = await loadSiglip(dirs['64k'], { mmap: true, towers: 'text' });
      const tc = plain.config.textConfig!;
      const ids = tf.tensor2d(
        Int32Array.from(
          { length: 2 * tc.maxPositionEmbeddings },
          (_, i) => (i * 31) % tc.vocabSize,
        ),
        [2, tc.maxPositionEmbeddings],
        'int32',
      );
      try {
        for (const m of [plain, mapped]) {
          const opt = tf.train.adam(1e-2);
          const vars = m.text!.model.trainableWeights.map((w) => w.read() as tf.Variable);
          for (let step = 0; step < 2; step++) {
            opt.minimize(
              () => {
                const outs = m.text!.model.apply(ids, { training: true }) as
                  tf.Tensor | tf.Tensor[];
                return tf.addN((Array.isArray(outs) ? outs : [outs]).map((o) => o.square().mean()));
              },
              false,
              vars,
            );
          }
          opt.dispose();
        }
        const want = weightValues(plain);
        const got = weightValues(mapped);
        for (const [k, v] of want)
          assert.ok(sameBits(got.get(k)!, v), `${k} differs after training`);
        const fresh = await loadSiglip(dirs['64k'], { towers: 'text' });
        const before = weightValues(fresh);
        fresh.dispose();
        const changed = [...want].filter(([k, v]) => !sameBits(before.get(k)!, v)).length;
        assert.ok(changed > want.size / 2, `only ${changed} of ${want.size} weights changed`);
      } finally {
        ids.dispose();
        plain.dispose();
        mapped.dispose();
      }
    });

    it('a mapped weight copied into a packed layout drops its pages; one read in place keeps them; products exact', async () => {
      await tf.setBackend('native');
      const dir = join(root, 'pack');
      await fsp.mkdir(dir, { recursive: true });
      const k = 64;
      const n = 256;
      const w = Float32Array.from({ length: k * n }, (_, i) => Math.sin(i));
      const wPath = join(dir, 'w.bin');
      writeFileSync(wPath, new Uint8Array(w.buffer));
      const mappedW = new Float32Array(addon.mapFiles([wPath], [0], [k * n * 4], 4));
      const wt = tf.tensor2d(mappedW, [k, n]);
      const plainW = tf.tensor2d(w, [k, n]);
      const x = tf.tensor2d(
        Float32Array.from({ length: 3 * k }, (_, i) => Math.cos(i)),
        [3, k],
      );
      /** Runs four products of `f` on the mapped weight (the 2nd packs it), exact; returns the bytes copied. */
      const products = (f: (weight: tf.Tensor2D) => tf.Tensor, label: string): number => {
        const want = tf.tidy(() => f(plainW).dataSync());
        const before = addon.cacheStats().packedBytes;
        for (let i = 0; i < 4; i++) {
          const got = tf.tidy(() => f(wt).dataSync());
          assert.ok(sameBits(Float32Array.from(got), Float32Array.from(want)), `${label} ${i}`);
        }
        return addon.cacheStats().packedBytes - before;
      };
      // packing is oneDNN's: the default runs products this small on OpenBLAS
      await withGemm('onednn', () => {
        try {
          // x @ w: on AVX2 oneDNN multiplies by [K, N] as it is (no copy: the mapped pages are the weight)
          const plainCopy = products((weight) => tf.matMul(x, weight), 'product');
          if (plainCopy === 0) assert.ok(rssOf(wPath) > 0, 'a weight read in place lost its pages');
          else assert.equal(rssOf(wPath), 0, "the packed weight's pages are still resident");
          // ones @ w^T: a transposed use; where it is copied into the packed layout, the pages go
          const transposedCopy = products(
            (weight) => tf.matMul(tf.ones([3, n]), weight, false, true),
            'transposed product',
          );
          if (transposedCopy > 0)
            assert.equal(rssOf(wPath), 0, 'the packed weight pages are resident');
          assert.ok(plainCopy + transposedCopy > 0, 'neither use of the weight was packed');
          // the weight as a left operand (never packed) reads its pages again from the file
          const again = tf.tidy(() => tf.matMul(wt, tf.ones([3, n]), false, true).dataSync());
          const wantAgain = tf.tidy(() =>
            tf.matMul(plainW, tf.ones([3, n]), false, true).dataSync(),
          );
          assert.ok(sameBits(Float32Array.from(again), Float32Array.from(wantAgain)));
          assert.ok(rssOf(wPath) > 0);
        } finally {
          tf.dispose([wt, plainW, x]);
        }
      });
    });

    it('a gather from a mapped table on native reads only the rows looked up', async () => {
      await tf.setBackend('native');
      const rows = 16384;
      const cols = 1024; // one row is one 4 KiB page: the table is 64 MiB
      const path = join(root, 'table.bin');
      const table = new Float32Array(rows * cols);
      for (let r = 0; r < rows; r++) table.fill(r, r * cols, (r + 1) * cols);
      writeFileSync(path, new Uint8Array(table.buffer));
      // random: as the loader maps token tables (no readahead, no 2 MiB huge-page mappings).
      const t = tf.tensor2d(
        new Float32Array(addon.mapFiles([path], [0], [rows * cols * 4], 4, true)),
        [rows, cols],
      );
      try {
        const ids = [5, 16000, 77, 5];
        const got = tf.tidy(() =>
          tf.gather(t, tf.tensor1d(ids, 'int32')).add(tf.scalar(0)).arraySync(),
        ) as number[][];
        assert.deepEqual(
          got.map((r) => r[cols - 1]),
          ids,
        );
        // A read maps the page-cache folio around it: 64 KiB of fault-around, or a whole large folio (up to 2 MiB
        // on Linux 6.18 for a file just written). A copy of the table, or a pass over it, would touch all 64 MiB.
        assert.ok(rssOf(path) <= 6 * 1024 * 1024, `${rssOf(path)} bytes of the table resident`);
      } finally {
        t.dispose();
      }
    });

    it('dispose + GC releases every mapping, and no tensor leaks', async () => {
      await tf.setBackend('native');
      await collect();
      const before = addon.mappedStats();
      const tensors = tf.memory().numTensors;
      const shard = join(dirs['64k'], 'text');
      const model = await loadSiglip(dirs['64k'], { mmap: true });
      assert.ok(addon.mappedStats().regions > before.regions);
      assert.ok(mapsOf(shard) > 0);
      model.dispose();
      assert.equal(tf.memory().numTensors, tensors);
      await collect();
      assert.deepEqual(addon.mappedStats(), before);
      assert.equal(mapsOf(shard), 0);
    });

    it('bad, short and corrupt shards give errors naming the file', async () => {
      await tf.setBackend('native');
      /** A copy of the 64 KiB conversion and the path of its first text shard. */
      const copy = async (name: string): Promise<[string, string]> => {
        const d = join(root, name);
        await fsp.cp(dirs['64k'], d, { recursive: true });
        const bins = (await fsp.readdir(join(d, 'text'))).filter((f) => f.endsWith('.bin')).sort();
        return [d, join(d, 'text', bins[0])];
      };
      const [short, victim] = await copy('short');
      await fsp.truncate(victim, 100);
      await assert.rejects(loadSiglip(short, { mmap: true }), (e: Error) => {
        assert.ok(e instanceof IntegrityError && e.message.includes(victim), e.message);
        return true;
      });
      await assert.rejects(loadSiglip(short, { mmap: true, verify: false }), (e: Error) => {
        assert.ok(e instanceof ArtifactFormatError && e.message.includes(victim), e.message);
        assert.match(e.message, /shard is 100 bytes, expected/);
        return true;
      });
      const [corrupt, flipped] = await copy('corrupt');
      const buf = readFileSync(flipped);
      buf[7] ^= 1;
      writeFileSync(flipped, buf);
      await assert.rejects(loadSiglip(corrupt, { mmap: true }), (e: Error) => {
        assert.ok(e instanceof IntegrityError && e.message.includes(flipped), e.message);
        return true;
      });
      await fsp.rm(flipped);
      await assert.rejects(loadSiglip(corrupt, { mmap: true, verify: false }), (e: Error) => {
        assert.ok(e.message.includes(flipped) && /missing file/.test(e.message), e.message);
        return true;
      });
    });

    it('mmap: true says why mapping is unavailable on a backend that copies weights', async () => {
      await useTestBackend('wasm');
      await assert.rejects(
        loadSiglip(dirs['4m'], { mmap: true }),
        /mmap: true, but weights cannot be mapped: the wasm backend copies weights/,
      );
      const model = await loadSiglip(dirs['4m']); // default: mapping where it helps, so none here
      try {
        assert.equal(model.weightStorage.mappedBytes, 0);
      } finally {
        model.dispose();
      }
    });
  });
});
