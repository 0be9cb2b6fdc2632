/**
 * The native backend's reference rates, measured in the calling process: the library's own large sgemm
 * ([2048,1152] x [1152,4304], oneDNN with pre-packed weights, as the backend runs weights) and OpenBLAS cblas_sgemm
 * on the same product, and (npm run bench:gemm) both libraries on the model's matMul shapes.
 *
 *   npm run bench:gemm [-- --model so400m|base] [--threads N] [--reps 5]
 */
import { fileURLToPath } from 'node:url';
import { loadNativeAddon } from '../src/backends/native/addon.js';
import { arg } from './cli.js';

export const SGEMM_SHAPE = [2048, 1152, 4304] as const;

const LIBS = { onednn: 0, 'onednn packed': 1, openblas: 2, 'openblas tiled': 3 } as const;
type Lib = keyof typeof LIBS;

/** GFLOP/s of one [m,k]x[k,n] product on each library (best of `reps`). */
export function sgemmRates(m: number, k: number, n: number, reps = 3): Record<Lib, number> {
  const addon = loadNativeAddon();
  if (typeof addon === 'string') throw new Error(addon);
  const out = {} as Record<Lib, number>;
  for (const [name, code] of Object.entries(LIBS) as [Lib, 0 | 1 | 2 | 3][]) {
    out[name] = (2 * m * k * n) / addon.benchSgemm(m, k, n, code, reps) / 1e9;
  }
  return out;
}

/**
 * The reference line `npm run bench -- --backend native` prints: the faster of the two libraries the backend runs
 * matMuls on (oneDNN with packed weights, OpenBLAS) on the large sgemm.
 */
export function referenceSgemm(): { gflops: number; line: string } {
  const [m, k, n] = SGEMM_SHAPE;
  const r = sgemmRates(m, k, n);
  const best = Math.max(r['onednn packed'], r.openblas);
  return {
    gflops: best,
    line:
      `library sgemm [${m},${k}]x[${k},${n}] in this process: oneDNN ${r['onednn packed'].toFixed(0)} GFLOP/s ` +
      `(packed weights; plain ${r.onednn.toFixed(0)}), OpenBLAS ${r.openblas.toFixed(0)} GFLOP/s; ` +
      `reference: the faster, ${best.toFixed(0)}`,
  };
}

/** The GEMM library the native backend chose for each matMul problem it measured (and both rates it saw). */
export function printGemmChoices(): void {
  const addon = loadNativeAddon();
  if (typeof addon === 'string') return;
  const choices = addon.gemmChoices();
  if (choices.length === 0) return;
  console.log('  GEMM library per matMul problem (first calls timed on both; GFLOP/s best of 3):');
  for (const c of choices.sort((a, b) => a.shape.localeCompare(b.shape))) {
    console.log(
      `    ${c.shape}${c.packed ? ' (packed)' : ''}: ${c.library} ` +
        `(oneDNN ${c.onednnGflops.toFixed(0)}, OpenBLAS ${c.openblasGflops.toFixed(0)})`,
    );
  }
}

/** The model's matMuls per encoder layer: [tokens, in] x [in, out]. */
export function modelShapes(model: string): { label: string; m: number; k: number; n: number }[] {
  const [d, inter, tokens] = model === 'base' ? [768, 3072, 196] : [1152, 4304, 256];
  const shapes = [];
  for (const [batch, what] of [
    [1, 'image'],
    [8, 'images'],
  ] as const) {
    const m = batch * tokens;
    shapes.push(
      { label: `${batch} ${what}: q/k/v/out proj`, m, k: d, n: d },
      { label: `${batch} ${what}: fc1`, m, k: d, n: inter },
      { label: `${batch} ${what}: fc2`, m, k: inter, n: d },
    );
  }
  shapes.push({ label: '8 texts x 64: fc1', m: 512, k: d, n: inter });
  return shapes;
}

async function main(): Promise<void> {
  const addon = loadNativeAddon();
  if (typeof addon === 'string') throw new Error(addon);
  const threads = process.argv.includes('--threads') ? Number(arg('threads', '1')) : undefined;
  if (threads !== undefined) addon.setThreads(threads);
  const reps = Number(arg('reps', '5'));
  const model = arg('model', 'so400m');
  const info = addon.info();
  console.log(
    `${info.library} ${info.version} (${info.isa}, ${info.threads} threads) vs ${info.blas}`,
  );
  console.log(
    '| shape | oneDNN GFLOP/s | oneDNN packed | OpenBLAS (own threads) | OpenBLAS in OpenMP tiles | fastest |',
  );
  console.log('|---|---|---|---|---|---|');
  const [m0, k0, n0] = SGEMM_SHAPE;
  for (const s of [{ label: 'reference', m: m0, k: k0, n: n0 }, ...modelShapes(model)]) {
    const r = sgemmRates(s.m, s.k, s.n, reps);
    const ranked = (Object.keys(LIBS) as Lib[]).sort((a, b) => r[b] - r[a]);
    console.log(
      `| ${s.label} [${s.m},${s.k}]x[${s.k},${s.n}] | ${r.onednn.toFixed(0)} | ${r['onednn packed'].toFixed(0)} | ` +
        `${r.openblas.toFixed(0)} | ${r['openblas tiled'].toFixed(0)} | ${ranked[0]} ` +
        `(${(r[ranked[0]] / r[ranked[1]]).toFixed(2)}x the next) |`,
    );
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().then(
    () => process.exit(0),
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
}
