import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { convertCheckpoint } from '../../converter/convert.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { loadPipeline, resolvePipelineModel } from '../../src/pipeline/node.js';
import type { SiglipPipeline } from '../../src/pipeline/pipeline.js';
import { useTestBackend } from '../helpers/backend.js';
import { fixture, REPO_ROOT } from '../helpers/fixtures.js';
import { tempDir } from '../converter/helpers.js';
import { startMockHub, type MockHub } from '../hub/mock_hub.js';
import { fixtureImages, tinyCheckpointWithTokenizer } from './helpers.js';

const CLI = join(REPO_ROOT, 'dist/src/cli/main.js');

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI asynchronously (the mock hub answers from this process). */
function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args, '--backend', 'cpu'], {
      env: { ...process.env, SIGLIP2_MODEL: '', HF_TOKEN: '', ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** A localhost port with nothing listening. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('siglip2 classify / embed (CLI)', function () {
  this.timeout(120000);
  let root: string;
  let hf: string;
  let converted: string;
  let pipe: SiglipPipeline;
  const images = fixtureImages();
  const labels = ['cat', 'rocket', 'dog'];

  before(async () => {
    await useTestBackend('cpu');
    root = tempDir('pipeline-cli');
    hf = tinyCheckpointWithTokenizer(join(root, 'hf'));
    converted = join(root, 'converted');
    await convertCheckpoint(hf, converted);
    pipe = await loadPipeline(hf);
  });
  after(() => {
    pipe.dispose();
    rmSync(root, { recursive: true, force: true });
  });

  it('classify --json on a converted folder and a checkpoint folder gives the library scores', async () => {
    const expected = await pipe.classify(images, labels);
    for (const model of [converted, hf]) {
      const r = await cli([
        'classify',
        ...images,
        '--labels',
        labels.join(','),
        '--model',
        model,
        '--json',
      ]);
      assert.equal(r.status, 0, r.stderr);
      const out = JSON.parse(r.stdout) as {
        template: string;
        results: { image: string; predictions: { label: string; score: number }[] }[];
      };
      assert.equal(out.template, 'This is a photo of {}.');
      assert.deepEqual(
        out.results.map((x) => x.image),
        images,
      );
      out.results.forEach((x, i) => {
        assert.deepEqual(
          x.predictions.map((p) => p.label),
          expected[i].map((p) => p.label),
        );
        assert.ok(
          maxDiff(
            x.predictions.map((p) => p.score),
            expected[i].map((p) => p.score),
          ) < 1e-6,
        );
      });
    }
  });

  it('classify prints a table; --top-k and --template apply', async () => {
    const r = await cli([
      'classify',
      images[0],
      '--labels',
      'cat, dog',
      '--model',
      hf,
      '--top-k',
      '1',
      '--template',
      'a photo of {}',
    ]);
    assert.equal(r.status, 0, r.stderr);
    const expected = await pipe.classify(images[0], ['cat', 'dog'], { template: 'a photo of {}' });
    assert.equal(
      r.stdout,
      `${images[0]}\n  ${expected[0].score.toFixed(4)}  ${expected[0].label}\n`,
    );
  });

  it('embed writes .json, .npy and .safetensors files equal to the library embeddings', async () => {
    const texts = ['a photo of a cat', 'a rocket'];
    const te = await pipe.embedTexts(texts);
    const ie = await pipe.embedImages(images);
    // JSON (texts)
    const j = join(root, 'e.json');
    let r = await cli(['embed', '--text', ...texts, '--model', converted, '--out', j]);
    assert.equal(r.status, 0, r.stderr);
    const json = JSON.parse(readFileSync(j, 'utf8')) as {
      kind: string;
      inputs: string[];
      dims: number[];
      embeddings: number[][];
    };
    assert.equal(json.kind, 'text');
    assert.deepEqual(json.inputs, texts);
    assert.deepEqual(json.dims, [2, 48]);
    assert.ok(maxDiff(json.embeddings.flat(), te.data) < 1e-6);
    // .npy (images)
    const n = join(root, 'e.npy');
    r = await cli(['embed', ...images, '--model', hf, '--out', n]);
    assert.equal(r.status, 0, r.stderr);
    const bytes = readFileSync(n);
    assert.equal(bytes.subarray(0, 6).toString('latin1'), '\x93NUMPY');
    const hl = bytes.readUInt16LE(8);
    assert.match(
      bytes.subarray(10, 10 + hl).toString('latin1'),
      /'descr': '<f4', 'fortran_order': False, 'shape': \(2, 48\)/,
    );
    assert.equal((10 + hl) % 64, 0);
    const data = new Float32Array(
      bytes.buffer.slice(bytes.byteOffset + 10 + hl, bytes.byteOffset + bytes.length),
    );
    assert.ok(maxDiff(data, ie.data) < 1e-6);
    // .safetensors (images)
    const s = join(root, 'e.safetensors');
    r = await cli(['embed', ...images, '--model', converted, '--out', s]);
    assert.equal(r.status, 0, r.stderr);
    const st = await readSafetensors(s);
    assert.deepEqual(st.get('embeddings')!.shape, [2, 48]);
    assert.ok(maxDiff(st.get('embeddings')!.data, ie.data) < 1e-6);
    // stdout JSON, patch features
    r = await cli(['embed', images[0], '--patches', '--model', hf]);
    assert.equal(r.status, 0, r.stderr);
    const pf = JSON.parse(r.stdout) as {
      kind: string;
      dims: number[];
      grids: number[][];
      embeddings: number[][][];
    };
    assert.deepEqual([pf.kind, pf.dims, pf.grids], ['patches', [1, 16, 48], [[4, 4]]]);
    const lib = await pipe.patchFeatures([images[0]]);
    assert.ok(maxDiff(pf.embeddings.flat(2), lib.data) < 1e-6);
  });

  it('bad input: unreadable / non-image / empty files, empty labels, unknown --out format', async () => {
    const empty = join(root, 'empty.jpg');
    writeFileSync(empty, '');
    const cases: [string[], RegExp][] = [
      [['classify', join(root, 'nope.png'), '--labels', 'a'], /nope\.png: cannot read image file/],
      [
        ['classify', fixture('siglip_tiny', 'config.json'), '--labels', 'a'],
        /config\.json: .*(unsupported image format|not an image)/i,
      ],
      [['classify', empty, '--labels', 'a'], /empty\.jpg: file is empty \(0 bytes\), not an image/],
      [['classify', images[0], '--labels', ''], /--labels: the list of candidate labels is empty/],
      [['classify', images[0], '--labels', 'cat,,dog'], /label 2 is empty/],
      [
        ['embed', images[0], '--out', join(root, 'x.txt')],
        /unknown format "\.txt"; use \.json, \.npy or \.safetensors/,
      ],
    ];
    for (const [args, re] of cases) {
      const r = await cli([...args, '--model', hf]);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
    }
  });

  it('a too-long label is truncated with a warning on stderr', async () => {
    const long = Array(20).fill('cat').join(' ');
    const r = await cli(['classify', images[0], '--labels', `dog,${long}`, '--model', hf]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      r.stderr,
      /warning: texts\[1\] .* is longer than the text model's 16 tokens; it was truncated/,
    );
  });

  it('no model and no hub: the message says how to use a local checkpoint', async () => {
    const port = await closedPort();
    const r = await cli(['classify', images[0], '--labels', 'cat'], {
      HF_ENDPOINT: `http://127.0.0.1:${port}`,
      HF_HOME: join(root, 'hf-home-empty'),
      SIGLIP2_CACHE: join(root, 'cache-empty'),
    });
    assert.equal(r.status, 2);
    assert.match(
      r.stderr,
      /cannot get the model google\/siglip2-base-patch16-224 \(revision main\) from the Hugging Face hub/,
    );
    assert.match(
      r.stderr,
      /siglip2 classify photo\.jpg --labels cat,dog --model \/path\/to\/folder/,
    );
    assert.match(r.stderr, /siglip2 convert \/path\/to\/hf-checkpoint \/path\/to\/converted/);
    assert.match(r.stderr, /HF_ENDPOINT=/);
    assert.match(r.stderr, /SIGLIP2_MODEL=/);
  });

  describe('hub models: downloaded and converted into the cache once', () => {
    let hub: MockHub;
    const repo = 'google/siglip-tiny-mock';
    before(async () => {
      hub = await startMockHub({ repos: [{ id: repo, folder: hf }] });
    });
    after(() => hub.close());

    it('first use converts into <cache>/<org>--<name>--<commit>--<dtype>; later uses need no hub', async () => {
      const cacheDir = join(root, 'cache');
      const hubCacheDir = join(root, 'hub-cache');
      const first = await resolvePipelineModel(repo, { endpoint: hub.url, cacheDir, hubCacheDir });
      const commit = hub.commitOf(repo);
      assert.deepEqual(first, {
        kind: 'converted',
        location: join(cacheDir, `google--siglip-tiny-mock--${commit}--float32`),
        repoId: repo,
        commit,
        cached: false,
      });
      assert.ok(existsSync(join(first.location, 'siglip.json')));
      assert.ok(existsSync(join(first.location, 'tokenizer.json')));
      assert.deepEqual(
        readdirSync(cacheDir).filter((f) => f.includes('partial')),
        [],
      );
      const second = await resolvePipelineModel(repo, {
        endpoint: `http://127.0.0.1:${await closedPort()}`,
        cacheDir,
        hubCacheDir,
      });
      assert.deepEqual(second, { ...first, cached: true });
    });

    it('the CLI default model ($SIGLIP2_MODEL) comes from the hub, then from the cache offline', async () => {
      const env = {
        SIGLIP2_MODEL: repo,
        HF_ENDPOINT: hub.url,
        HF_HOME: join(root, 'hf-home'),
        SIGLIP2_CACHE: join(root, 'cli-cache'),
      };
      const expected = await pipe.classify(images, labels);
      let r = await cli(['classify', ...images, '--labels', labels.join(','), '--json'], env);
      assert.equal(r.status, 0, r.stderr);
      const check = (stdout: string) => {
        const out = JSON.parse(stdout) as { results: { predictions: { score: number }[] }[] };
        out.results.forEach((x, i) =>
          assert.ok(
            maxDiff(
              x.predictions.map((p) => p.score),
              expected[i].map((p) => p.score),
            ) < 1e-6,
          ),
        );
      };
      check(r.stdout);
      r = await cli(['classify', ...images, '--labels', labels.join(','), '--json'], {
        ...env,
        HF_ENDPOINT: `http://127.0.0.1:${await closedPort()}`,
      });
      assert.equal(r.status, 0, r.stderr);
      check(r.stdout);
    });
  });
});
