/**
 * The model's matMul shapes on onnxruntime's GEMM (MLAS) against the native addon's two libraries, in one process,
 * rounds interleaved: is the native backend's gap to onnxruntime the GEMM itself?
 *
 *   npm run bench:peer-gemm [-- --model so400m|base] [--rounds 7] [--pause-ms 300]
 *
 * onnxruntime runs a one-MatMul ONNX graph whose weight is an initializer, as in the peer's tower graphs (its MatMul
 * packs such a weight once, at session creation). Its times include the JavaScript call and the copy of the output
 * into a JavaScript array, which the addon's in-process timings do not: the comparison leans towards the addon.
 * Both use all logical cores (onnxruntime's intra-op threads, the addon's OpenMP threads).
 */
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadNativeAddon } from '../src/backends/native/addon.js';
import { SGEMM_SHAPE, modelShapes } from './native_sgemm.js';
import { OnnxGraph } from './peer/onnx_graph.js';
import { loadOrt, type Ort, type OrtSession } from './peer/ort.js';
import { peerCacheDir, peerSession } from './peer/session.js';
import { arg, median } from './cli.js';

/** A session of `x [m,k] @ w [k,n]` with `w` a random initializer (the graph is written once into the temp folder). */
async function matMulSession(ort: Ort, m: number, k: number, n: number): Promise<OrtSession> {
  const base = join(peerCacheDir(), `matmul-${m}x${k}x${n}`);
  if (!existsSync(`${base}.onnx`)) {
    const g = new OnnxGraph(`${base}.weights`);
    const x = g.input('x', 'float', [m, k]);
    g.node('MatMul', [x, g.weight('w', [k, n])], {}, 'y');
    g.output('y', 'float', [m, n]);
    g.finish(`${base}.onnx`);
  }
  return peerSession(ort, `${base}.onnx`, cpus().length);
}

async function main(): Promise<void> {
  const addon = loadNativeAddon();
  if (typeof addon === 'string')
    throw new Error(`bench:peer-gemm needs the native addon: ${addon}`);
  const ort = loadOrt();
  const model = arg('model', 'so400m');
  const rounds = Math.max(3, Number(arg('rounds', '7')));
  // the pause after onnxruntime's products, before the addon's (see the loop below)
  const pauseMs = Number(arg('pause-ms', '300'));
  const info = addon.info();
  console.log(
    `onnxruntime-node ${ort.env.versions.node} (MLAS) vs ${info.library} ${info.version} (${info.isa}) and ` +
      `${info.blas.split(' ')[0]}; ${cpus().length} threads; ${cpus()[0].model}`,
  );
  console.log(
    `${rounds} rounds interleaved; per round the best of 3 timed products after a warm-up; medians over rounds, GFLOP/s`,
  );
  console.log(
    '| shape | onnxruntime | OpenBLAS tiles (addon default) | oneDNN packed | onnxruntime / best addon |',
  );
  console.log('|---|---|---|---|---|');
  const [m0, k0, n0] = SGEMM_SHAPE;
  for (const s of [{ label: 'reference', m: m0, k: k0, n: n0 }, ...modelShapes(model)]) {
    const session = await matMulSession(ort, s.m, s.k, s.n);
    const x = new ort.Tensor(
      'float32',
      Float32Array.from({ length: s.m * s.k }, (_, i) => Math.sin(i)),
      [s.m, s.k],
    );
    const flop = 2 * s.m * s.k * s.n;
    const rates = { ort: [] as number[], blas: [] as number[], dnnl: [] as number[] };
    const ortBest = async () => {
      let best = Infinity;
      for (let r = 0; r < 4; r++) {
        const t0 = performance.now();
        const out = await session.run({ x });
        const seconds = (performance.now() - t0) / 1000;
        for (const y of Object.values(out)) y.dispose();
        if (r > 0) best = Math.min(best, seconds);
      }
      return best;
    };
    for (let round = 0; round < rounds; round++) {
      // Pauses between the libraries: onnxruntime's workers spin after a run (with 20 ms the addon's next
      // product on base's [196,768]x[768,768] ran at 74-88 GFLOP/s, 121-139 alone).
      await sleep(20);
      rates.ort.push(flop / (await ortBest()) / 1e9);
      await sleep(pauseMs);
      rates.blas.push(flop / addon.benchSgemm(s.m, s.k, s.n, 3, 3) / 1e9);
      await sleep(20);
      rates.dnnl.push(flop / addon.benchSgemm(s.m, s.k, s.n, 1, 3) / 1e9);
    }
    await session.release();
    const [o, b, d] = [median(rates.ort), median(rates.blas), median(rates.dnnl)];
    console.log(
      `| ${s.label} [${s.m},${s.k}]x[${s.k},${s.n}] | ${o.toFixed(0)} | ${b.toFixed(0)} | ${d.toFixed(0)} | ` +
        `${(o / Math.max(b, d)).toFixed(2)}x |`,
    );
  }
}

await main();
