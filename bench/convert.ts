// Benchmark of `siglip2 convert` on a full-size checkpoint: writes a random-weight so400m-patch16-256 checkpoint
// (float32, 2 safetensors shards + index, like the hub) to a temp folder, converts it to float32 and float16 in
// child processes, and reports wall time and peak RSS. Not a test. Run: npm run bench:convert [-- --keep]
import { spawnSync } from 'node:child_process';
import { existsSync, promises as fsp, readFileSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../src/model/config.js';
import { checkpointWeights } from '../src/model/weight_map.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const FIXTURES = process.env.SIGLIP2_FIXTURES ?? resolve(ROOT, '../shared/fixtures');
const CONFIG = join(FIXTURES, 'full_size_configs/siglip2-so400m-patch16-256/config.json');
const WORK = process.env.SIGLIP2_BENCH_DIR ?? join(tmpdir(), 'siglip2-bench-so400m');
const CKPT = join(WORK, 'checkpoint');

/** Fills an array with uniform values in [-0.05, 0.05) (xorshift32). */
function fillRandom(a: Float32Array, seed: number): number {
  let x = seed | 0 || 1;
  for (let i = 0; i < a.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    a[i] = ((x >>> 0) / 4294967296 - 0.5) * 0.1;
  }
  return x;
}

async function writeCheckpoint(): Promise<number> {
  const configJson = readFileSync(CONFIG, 'utf8');
  const entries = checkpointWeights(parseConfig(JSON.parse(configJson), CONFIG));
  const total = entries.reduce((s, e) => s + 4 * e.hfShape.reduce((a, b) => a * b, 1), 0);
  const free = statfsSync(WORK).bavail * statfsSync(WORK).bsize;
  if (free < total * 2.2) {
    throw new Error(
      `${WORK}: ${(free / 1e9).toFixed(1)} GB free, need about ${((total * 2.2) / 1e9).toFixed(1)} GB`,
    );
  }
  if (existsSync(join(CKPT, 'model.safetensors.index.json'))) return total;
  await fsp.mkdir(CKPT, { recursive: true });
  await fsp.writeFile(join(CKPT, 'config.json'), configJson);
  // Two shards split near the middle, in state_dict order.
  const shards: (typeof entries)[] = [[], []];
  let acc = 0;
  for (const e of entries) {
    const bytes = 4 * e.hfShape.reduce((a, b) => a * b, 1);
    shards[acc + bytes / 2 < total / 2 ? 0 : 1].push(e);
    acc += bytes;
  }
  const weightMap: Record<string, string> = {};
  let seed = 12345;
  const chunk = new Float32Array(4 * 1024 * 1024);
  for (let s = 0; s < 2; s++) {
    const name = `model-0000${s + 1}-of-00002.safetensors`;
    const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
    let offset = 0;
    for (const e of shards[s]) {
      const bytes = 4 * e.hfShape.reduce((a, b) => a * b, 1);
      header[e.hfName] = { dtype: 'F32', shape: e.hfShape, data_offsets: [offset, offset + bytes] };
      offset += bytes;
      weightMap[e.hfName] = name;
    }
    let json = JSON.stringify(header);
    json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
    const fh = await fsp.open(join(CKPT, name), 'w');
    const prefix = Buffer.alloc(8);
    prefix.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
    await fh.write(prefix);
    await fh.write(Buffer.from(json));
    for (const e of shards[s]) {
      let left = e.hfShape.reduce((a, b) => a * b, 1);
      while (left > 0) {
        const n = Math.min(left, chunk.length);
        seed = fillRandom(chunk, seed);
        await fh.write(new Uint8Array(chunk.buffer, 0, n * 4));
        left -= n;
      }
    }
    await fh.close();
  }
  await fsp.writeFile(
    join(CKPT, 'model.safetensors.index.json'),
    JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2),
  );
  return total;
}

interface Run {
  what: string;
  seconds: number;
  peakRssMiB: number;
  outputMiB?: number;
}

function runChild(what: string, args: string[]): Run {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const seconds = (Date.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`${what} failed (${r.status}):\n${r.stderr}\n${r.stdout}`);
  const out = JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))) as {
    rss: number;
    manifest?: { towers: Record<string, { weightBytes: number }> };
  };
  const bytes = out.manifest
    ? Object.values(out.manifest.towers).reduce((s, t) => s + t.weightBytes, 0)
    : undefined;
  return {
    what,
    seconds,
    peakRssMiB: out.rss / 2 ** 20,
    outputMiB: bytes === undefined ? undefined : bytes / 2 ** 20,
  };
}

async function main(): Promise<void> {
  const keep = process.argv.includes('--keep');
  await fsp.mkdir(WORK, { recursive: true });
  const t0 = Date.now();
  const total = await writeCheckpoint();
  console.log(
    `checkpoint: ${CKPT} (${(total / 2 ** 30).toFixed(2)} GiB float32, 2 shards; ready in ${((Date.now() - t0) / 1000).toFixed(0)} s)`,
  );
  const cli = join(ROOT, 'dist/src/cli/main.js');
  const runs: Run[] = [];
  for (const dtype of ['float32', 'float16']) {
    const out = join(WORK, `out-${dtype}`);
    runs.push(
      runChild(`convert --dtype ${dtype}`, [
        cli,
        'convert',
        CKPT,
        out,
        '--dtype',
        dtype,
        '--overwrite',
        '--json',
      ]),
    );
  }
  // Loading the float16 vision tower shard by shard (dequantized to float32 in memory: about 1.6 GB).
  const loadScript = join(ROOT, 'dist/bench/load_tower.js');
  if (existsSync(loadScript)) {
    runs.push(
      runChild('loadSiglip float16, vision', [loadScript, join(WORK, 'out-float16'), 'vision']),
    );
  }
  console.log('\nwhat                          seconds   peak RSS (MiB)   output (MiB)');
  for (const r of runs) {
    console.log(
      `${r.what.padEnd(28)} ${r.seconds.toFixed(1).padStart(8)} ${r.peakRssMiB.toFixed(0).padStart(16)} ${(r.outputMiB?.toFixed(0) ?? '').padStart(14)}`,
    );
  }
  console.log(`checkpoint size: ${(total / 2 ** 20).toFixed(0)} MiB`);
  if (!keep) await fsp.rm(WORK, { recursive: true, force: true });
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
