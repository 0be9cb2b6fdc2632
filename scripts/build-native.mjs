#!/usr/bin/env node
// Builds the `native` TF.js backend (native/, C++ on oneDNN) with the node-gyp that npm ships, against the Node
// headers of the running node (--nodedir from process.execPath: nothing is downloaded).
//   node scripts/build-native.mjs              build; exit 1 when it cannot (npm run build:native)
//   node scripts/build-native.mjs --optional   the `install` script: when the compiler or oneDNN is missing,
//                                              print one line saying what to install and exit 0
// oneDNN: SIGLIP2_ONEDNN_PREFIX (a folder with include/ and lib/libdnnl.a), else the build in native/deps/onednn
// when `npm run build:onednn` made one (both linked statically), else the system's libdnnl (2.x or 3.x).
import { spawnSync } from 'node:child_process';
import console from 'node:console';
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const optional = process.argv.includes('--optional');
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const nativeDir = join(root, 'native');
const HINT =
  'apt-get install g++ make libdnnl-dev libopenblas-dev (Homebrew: onednn openblas), then npm run build:native';

function give_up(why) {
  const line = `siglip2-tfjs: native backend not built (${why}); to build it: ${HINT}`;
  if (optional) {
    console.warn(line);
    process.exit(0);
  }
  console.error(line);
  process.exit(1);
}

/** npm's own node-gyp: next to the npm that runs us, else beside this node. */
function findNodeGyp() {
  const candidates = [];
  const npmCli = process.env.npm_execpath;
  if (npmCli)
    candidates.push(join(dirname(npmCli), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  const prefix = dirname(dirname(process.execPath));
  candidates.push(
    join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  );
  try {
    const require = createRequire(import.meta.url);
    candidates.push(require.resolve('node-gyp/bin/node-gyp.js'));
  } catch {
    // not installed as a package: fine
  }
  return candidates.find((p) => existsSync(p));
}

/** The folder holding include/node/node_api.h for this node. */
function findNodeDir() {
  const prefix = dirname(dirname(process.execPath));
  for (const dir of [prefix, '/usr', '/usr/local']) {
    if (
      existsSync(join(dir, 'include', 'node', 'node_api.h')) &&
      existsSync(join(dir, 'include', 'node', 'common.gypi'))
    )
      return dir;
  }
  return undefined;
}

/** A oneDNN built by scripts/build-onednn.sh (or named by SIGLIP2_ONEDNN_PREFIX), linked statically; else undefined. */
function pinnedOneDnn() {
  const named = process.env.SIGLIP2_ONEDNN_PREFIX;
  if (named) {
    if (!existsSync(join(named, 'lib', 'libdnnl.a')))
      give_up(`SIGLIP2_ONEDNN_PREFIX=${named} has no lib/libdnnl.a`);
    return named;
  }
  const dir = join(nativeDir, 'deps', 'onednn');
  const built = existsSync(dir) && readdirSync(dir).some((f) => f.startsWith('.built-'));
  return built ? dir : undefined;
}

function has(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Compiles a two-line program against oneDNN and OpenBLAS: the fastest way to learn whether they are installed. */
function librariesPresent(prefix) {
  const src =
    '#include <dnnl.hpp>\n#include <cblas.h>\nint main(){return dnnl_version()->major>0?0:1;}\n';
  const dnnl = prefix ? `-I${prefix}/include ${prefix}/lib/libdnnl.a -fopenmp` : '-ldnnl';
  const r = spawnSync(
    'sh',
    ['-c', `${process.env.CXX ?? 'g++'} -x c++ - -x none -o /dev/null ${dnnl} -lopenblas`],
    {
      input: src,
      stdio: ['pipe', 'ignore', 'pipe'],
    },
  );
  return r.status === 0;
}

if (!existsSync(join(nativeDir, 'binding.gyp'))) give_up('native/binding.gyp is missing');
if (!has(process.env.CXX ?? 'g++') || !has('make')) give_up('no C++ compiler or make');
const nodeDir = findNodeDir();
if (nodeDir === undefined)
  give_up(`no Node headers (include/node/node_api.h) beside ${process.execPath}`);
const onednnPrefix = pinnedOneDnn();
if (!librariesPresent(onednnPrefix))
  give_up('oneDNN (dnnl.hpp, -ldnnl) or OpenBLAS (cblas.h, -lopenblas) not found');
const gyp = findNodeGyp();
if (gyp === undefined) give_up("npm's node-gyp was not found");

const gypArgs = [gyp, 'rebuild', `--nodedir=${nodeDir}`, '--loglevel=warn'];
if (onednnPrefix !== undefined) gypArgs.push(`--onednn_prefix=${resolve(onednnPrefix)}`);
const r = spawnSync(process.execPath, gypArgs, {
  cwd: nativeDir,
  stdio: ['ignore', 'inherit', 'inherit'],
  env: { ...process.env, npm_config_nodedir: nodeDir },
});
if (r.status !== 0) give_up(`node-gyp failed with exit code ${r.status}`);
const against = onednnPrefix === undefined ? "the system's oneDNN" : `oneDNN from ${onednnPrefix}`;
console.log(
  `siglip2-tfjs: native backend built (${join('native', 'build', 'Release', 'siglip2_native.node')}, ${against})`,
);
