import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import {
  ALLOW_UNTESTED_TFJS_ENV,
  TESTED_TFJS_VERSION,
  assertTestedTfjs,
} from '../../src/internals/tfjs.js';
import { REPO_ROOT } from '../helpers/fixtures.js';

const BANNER = /looks like you are running TensorFlow\.js in Node\.js/;

/** Runs an ES module snippet in a fresh Node process from the repository root; stdout + stderr. */
function runNode(source: string, env: NodeJS.ProcessEnv = {}): string {
  return execFileSync(process.execPath, ['--input-type=module', '-e', source], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  }).toString();
}

function runNodeAll(source: string, env: NodeJS.ProcessEnv = {}): string {
  try {
    return execFileSync(
      '/bin/sh',
      ['-c', `"${process.execPath}" --input-type=module -e "$SRC" 2>&1`],
      {
        cwd: REPO_ROOT,
        env: { ...process.env, ...env, SRC: source },
        encoding: 'utf8',
      },
    ).toString();
  } catch (e) {
    const err = e as { stdout?: string; status?: number };
    return `exit ${err.status}\n${err.stdout ?? ''}`;
  }
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sourceFiles(path));
    else if (name.endsWith('.ts')) out.push(path);
  }
  return out;
}

describe('internals: TF.js private API in one module, version-checked', () => {
  it('the installed TF.js is the tested version, and every @tensorflow dependency is pinned to it', () => {
    assert.equal(tf.version_core, TESTED_TFJS_VERSION);
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as Record<
      string,
      Record<string, string> | undefined
    >;
    const specs = ['dependencies', 'peerDependencies', 'devDependencies', 'optionalDependencies']
      .flatMap((k) => Object.entries(pkg[k] ?? {}))
      .filter(([name]) => name.startsWith('@tensorflow/'));
    assert.ok(specs.length >= 3);
    for (const [name, spec] of specs) assert.equal(spec, TESTED_TFJS_VERSION, name);
  });

  it('another TF.js version fails, naming the package and the fix; the opt-out warns instead', () => {
    assert.doesNotThrow(() => assertTestedTfjs({ '@tensorflow/tfjs-core': '4.22.0' }, false));
    assert.throws(
      () =>
        assertTestedTfjs(
          { '@tensorflow/tfjs-core': '4.22.0', '@tensorflow/tfjs-backend-wasm': '4.21.0' },
          false,
        ),
      new RegExp(
        `tested with TensorFlow\\.js 4\\.22\\.0 .* found @tensorflow/tfjs-backend-wasm 4\\.21\\.0\\. ` +
          `Install exactly 4\\.22\\.0 .* ${ALLOW_UNTESTED_TFJS_ENV}=1`,
      ),
    );
    assert.throws(
      () => assertTestedTfjs({ '@tensorflow/tfjs': undefined }, false),
      /unknown version/,
    );
    const warned: string[] = [];
    const original = console.warn;
    console.warn = (m: string) => warned.push(m);
    try {
      assertTestedTfjs({ '@tensorflow/tfjs-core': '5.0.0' }, true);
    } finally {
      console.warn = original;
    }
    assert.equal(warned.length, 1);
    assert.match(warned[0], /^warning: .*tfjs-core 5\.0\.0/);
  });

  it('importing the library with another TF.js version fails at import with that message', () => {
    // The check runs on import; a different version is simulated by editing tf.version before the import.
    const out = runNodeAll(
      "const tf = await import('@tensorflow/tfjs'); tf.version['tfjs-core'] = '4.21.0';" +
        "await import('./dist/src/index.js'); console.log('imported');",
    );
    assert.match(out, /exit 1/);
    assert.match(out, /found @tensorflow\/tfjs-core 4\.21\.0/);
    assert.doesNotMatch(out, /imported/);
    const allowed = runNodeAll(
      "const tf = await import('@tensorflow/tfjs'); tf.version['tfjs-core'] = '4.21.0';" +
        "await import('./dist/src/index.js'); console.log('imported');",
      { [ALLOW_UNTESTED_TFJS_ENV]: '1' },
    );
    assert.match(allowed, /warning: .*4\.21\.0/);
    assert.match(allowed, /imported/);
  });

  it('importing the library in Node prints no tfjs-node banner (TF.js alone does)', () => {
    const use =
      "await tf.setBackend('cpu'); tf.tensor([1, 2]).square().dataSync(); console.log('ran');";
    const plain = runNodeAll(`const tf = await import('@tensorflow/tfjs'); ${use}`);
    assert.match(plain, BANNER, 'control: TF.js without the library prints the banner');
    const lib = runNodeAll(
      `await import('./dist/src/index.js'); const tf = await import('@tensorflow/tfjs'); ${use}`,
    );
    assert.match(lib, /ran/);
    assert.doesNotMatch(lib, BANNER);
    // also when the cpu backend already exists before the library is imported, and other warnings still show
    const late = runNodeAll(
      "const tf = await import('@tensorflow/tfjs'); await tf.setBackend('cpu'); tf.env().set('PROD', false);" +
        "await import('./dist/src/index.js'); tf.tensor([1]).dataSync(); console.log('ran');",
    );
    assert.doesNotMatch(late, BANNER);
    assert.ok(runNode("console.log('ok')").includes('ok'));
  });

  it('no source file outside src/internals/ reaches into TF.js internals', () => {
    const forbidden: [RegExp, string][] = [
      [/tf\.engine\(\)/, 'tf.engine()'],
      [/\.runKernelFunc\(/, 'runKernelFunc'],
      [/\.state\.(activeTape|gradientDepth|numBytes)/, 'engine state'],
      [/os\.cpus\s*=/, 'the os.cpus patch'],
      [/\.cwrap\(/, "the wasm module's functions"],
      [/typedArrayFromHeap|makeOutput\(/, "the wasm backend's heap"],
      [/registryFactory|firstUse/, 'the backend registry'],
      [/wasmWorkerContents|wasm-out/, "tfjs-backend-wasm's files"],
    ];
    const src = join(REPO_ROOT, 'src');
    const found: string[] = [];
    for (const file of sourceFiles(src)) {
      const rel = relative(src, file);
      if (rel.startsWith('internals/')) continue;
      const text = readFileSync(file, 'utf8');
      for (const [re, what] of forbidden) if (re.test(text)) found.push(`${rel}: ${what}`);
    }
    assert.deepEqual(found, []);
  });
});
