// The reader fuzzer: seeded mutants of the tiny checkpoint's files, fed to the readers. Every mutant must either
// load with the tensors the (mutated) file really holds, identical to the original where the mutation leaves the
// tensors alone, or be refused with one of the typed errors; never another exception, a leaked tensor, a hang, or
// a large allocation.
import * as tf from '@tensorflow/tfjs';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  promises as fsp,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { convertCheckpoint } from '../../converter/convert.js';
import { encodeSafetensors, SafetensorsFile } from '../../src/io/safetensors.js';
import { loadSiglip, parseManifest, parseModelJson } from '../../src/loader/index.js';
import '../../src/loader/node.js';
import { CheckpointReader, checkCheckpointTensors } from '../../src/model/checkpoint.js';
import { parseConfig } from '../../src/model/config.js';
import { readConfig } from '../../src/model/load_hf.js';
import { checkpointWeights } from '../../src/model/weight_map.js';
import { FileAccessError, FileFormatError, IntegrityError } from '../../src/util/errors.js';
import {
  int,
  mutantRng,
  mutateJsonText,
  mutateSafetensors,
  pick,
  type Rng,
  splitSafetensors,
} from './mutate.js';

export const TARGETS = [
  'safetensors',
  'checkpoint',
  'sharded',
  'config',
  'manifest',
  'converted',
] as const;
export type Target = (typeof TARGETS)[number];

/** How often each target is drawn. The full model load (`converted`) is the slowest, so it is drawn least. */
const WEIGHTS: Record<Target, number> = {
  safetensors: 30,
  checkpoint: 20,
  sharded: 15,
  config: 10,
  manifest: 15,
  converted: 10,
};

export interface MutantResult {
  index: number;
  /** `unknown` for a mutant that hung (the runner knows only its index). */
  target: Target | 'unknown';
  what: string;
  outcome: 'loaded' | 'refused' | 'failed';
  /** The error's class (refused) or what went wrong (failed). */
  detail?: string;
  ms: number;
}

/** Errors a reader may throw for a bad file. */
export function isNamedError(e: unknown): boolean {
  return (
    e instanceof FileFormatError || e instanceof IntegrityError || e instanceof FileAccessError
  );
}

class OracleFailure extends Error {}

function sameBytes(a: ArrayBufferView, b: ArrayBufferView): boolean {
  if (a.byteLength !== b.byteLength) return false;
  const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

const SHARD = 64 * 1024;

export interface FuzzerOptions {
  /** Work folder (default: a fresh folder in /dev/shm when there is one, else the system temp folder). */
  workDir?: string;
  /** The siglip_tiny fixture folder. */
  tinyDir: string;
  targets?: readonly Target[];
}

/** Prepared base files and the loop body; `run(seed, index)` is mutant `index` of a run seeded `seed`. */
export class ReaderFuzzer {
  private constructor(
    private readonly work: string,
    private readonly tiny: string,
    private readonly targets: readonly Target[],
    private readonly base: {
      safetensors: Uint8Array;
      tensors: Map<string, { shape: number[]; data: Uint8Array }>;
      config: string;
      shard1: Uint8Array;
      shard2: Uint8Array;
      index: string;
      convertedFiles: Map<string, Uint8Array>;
      convertedWeights: Map<string, Float32Array>;
    },
  ) {}

  static async prepare(opts: FuzzerOptions): Promise<ReaderFuzzer> {
    const root = opts.workDir ?? (existsSync('/dev/shm') ? '/dev/shm' : tmpdir());
    const work = await fsp.mkdtemp(join(root, 'siglip2-fuzz-'));
    const tiny = opts.tinyDir;
    const safetensors = new Uint8Array(readFileSync(join(tiny, 'model.safetensors')));
    const tensors = new Map<string, { shape: number[]; data: Uint8Array }>();
    const { header, data } = splitSafetensors(safetensors);
    for (const [name, e] of Object.entries(header)) {
      if (name === '__metadata__') continue;
      const { shape, data_offsets } = e as { shape: number[]; data_offsets: [number, number] };
      tensors.set(name, { shape, data: data.slice(data_offsets[0], data_offsets[1]) });
    }
    // A sharded copy: the text tower in one file, the rest in another, with an index.
    const file = await SafetensorsFile.open(join(tiny, 'model.safetensors'));
    const part = async (keep: (n: string) => boolean) => {
      const out = [];
      for (const n of file.names.filter(keep)) {
        const t = await file.read(n);
        out.push({ name: n, shape: t.shape, data: t.data });
      }
      return encodeSafetensors(out);
    };
    const shard1 = await part((n) => n.startsWith('text_model.'));
    const shard2 = await part((n) => !n.startsWith('text_model.'));
    const weightMap: Record<string, string> = {};
    for (const n of file.names) {
      weightMap[n] = n.startsWith('text_model.')
        ? 'model-00001-of-00002.safetensors'
        : 'model-00002-of-00002.safetensors';
    }
    await file.close();
    const index = JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap });

    // A converted copy (float32, small shards), and its weights as loaded.
    const converted = join(work, 'converted-base');
    await convertCheckpoint(tiny, converted, { shardBytes: SHARD });
    const convertedFiles = new Map<string, Uint8Array>();
    const walk = async (dir: string, rel: string) => {
      for (const e of await fsp.readdir(dir, { withFileTypes: true })) {
        const r = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory()) await walk(join(dir, e.name), r);
        else convertedFiles.set(r, new Uint8Array(readFileSync(join(dir, e.name))));
      }
    };
    await walk(converted, '');
    await fsp.cp(converted, join(work, 'converted'), { recursive: true });
    const model = await loadSiglip(converted);
    const convertedWeights = new Map<string, Float32Array>();
    for (const [tower, m] of Object.entries(model.parts)) {
      for (const w of m?.weights ?? []) {
        convertedWeights.set(`${tower}:${w.originalName}`, w.read().dataSync() as Float32Array);
      }
    }
    model.dispose();

    const fuzzer = new ReaderFuzzer(work, tiny, opts.targets ?? TARGETS, {
      safetensors,
      tensors,
      config: readFileSync(join(tiny, 'config.json'), 'utf8'),
      shard1,
      shard2,
      index,
      convertedFiles,
      convertedWeights,
    });
    mkdirSync(join(work, 'single'));
    mkdirSync(join(work, 'sharded'));
    copyFileSync(join(tiny, 'config.json'), join(work, 'sharded', 'config.json'));
    return fuzzer;
  }

  get workDir(): string {
    return this.work;
  }

  private draw(rng: Rng): Target {
    const total = this.targets.reduce((s, t) => s + WEIGHTS[t], 0);
    let r = rng() * total;
    for (const t of this.targets) {
      r -= WEIGHTS[t];
      if (r < 0) return t;
    }
    return this.targets[this.targets.length - 1];
  }

  /** Runs mutant `index` of the run seeded `seed`. */
  async run(seed: number, index: number): Promise<MutantResult> {
    const rng = mutantRng(seed, index);
    const target = this.draw(rng);
    const started = performance.now();
    const tensorsBefore = tf.memory().numTensors;
    let what = '';
    const result = (outcome: MutantResult['outcome'], detail?: string): MutantResult => ({
      index,
      target,
      what,
      outcome,
      detail,
      ms: performance.now() - started,
    });
    try {
      let loaded: () => Promise<void>;
      ({ what, loaded } = await this.mutant(target, rng));
      try {
        await loaded();
      } catch (e) {
        if (e instanceof OracleFailure) return result('failed', e.message);
        if (!isNamedError(e)) {
          const err = e as Error;
          return result(
            'failed',
            e instanceof Error
              ? `${err.name}: ${err.message} @ ${(err.stack ?? '').split('\n')[1]?.trim()}`
              : `non-Error thrown: ${String(e)}`,
          );
        }
        return result('refused', (e as Error).name);
      }
      return result('loaded');
    } finally {
      const leaked = tf.memory().numTensors - tensorsBefore;
      if (leaked !== 0) what += ` [LEAK ${leaked} tensors]`;
    }
  }

  /** Writes the mutant files and returns the load-and-check step. */
  private async mutant(
    target: Target,
    rng: Rng,
  ): Promise<{ what: string; loaded: () => Promise<void> }> {
    switch (target) {
      case 'safetensors': {
        const { bytes, what } = mutateSafetensors(rng, this.base.safetensors, { data: true });
        const path = join(this.work, 'single', 'model.safetensors');
        writeFileSync(path, bytes);
        return { what, loaded: () => checkSafetensorsFile(path, bytes) };
      }
      case 'checkpoint':
      case 'sharded':
        return this.checkpointMutant(target, rng);
      case 'config': {
        const { text, what } = mutateJsonText(rng, this.base.config);
        return {
          what,
          loaded: async () => {
            let json: unknown;
            try {
              json = JSON.parse(text);
            } catch {
              return; // not JSON: readConfig's own message (covered by the checkpoint target)
            }
            const config = parseConfig(json, 'config.json');
            checkpointWeights(config); // sizes must stay sane enough to list
          },
        };
      }
      case 'manifest': {
        const files = this.base.convertedFiles;
        const rel =
          rng() < 0.5
            ? 'siglip.json'
            : pick(rng, ['vision/model.json', 'text/model.json', 'scores/model.json']);
        const { text, what } = mutateJsonText(rng, new TextDecoder().decode(files.get(rel)));
        return {
          what: `${rel}: ${what}`,
          loaded: async () => {
            let json: unknown;
            try {
              json = JSON.parse(text);
            } catch {
              return;
            }
            if (rel === 'siglip.json') {
              const m = parseManifest(json, rel);
              parseConfig(m.config, rel);
            } else parseModelJson(json, rel);
          },
        };
      }
      case 'converted':
        return this.convertedMutant(rng);
    }
  }

  private async checkpointMutant(
    target: 'checkpoint' | 'sharded',
    rng: Rng,
  ): Promise<{ what: string; loaded: () => Promise<void> }> {
    const dir = join(this.work, target === 'checkpoint' ? 'single' : 'sharded');
    const files: Record<string, Uint8Array | string> =
      target === 'checkpoint'
        ? { 'model.safetensors': this.base.safetensors, 'config.json': this.base.config }
        : {
            'model-00001-of-00002.safetensors': this.base.shard1,
            'model-00002-of-00002.safetensors': this.base.shard2,
            'model.safetensors.index.json': this.base.index,
            'config.json': this.base.config,
          };
    const names = Object.keys(files);
    const victim = pick(rng, names);
    let what: string;
    const original = files[victim];
    if (typeof original === 'string') {
      const m = mutateJsonText(rng, original);
      files[victim] = m.text;
      what = `${victim}: ${m.what}`;
    } else {
      // Structure only: a flipped data byte is a valid file with other values (safetensors has no checksum).
      const m = mutateSafetensors(rng, original);
      files[victim] = m.bytes;
      what = `${victim}: ${m.what}`;
    }
    for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
    return {
      what,
      loaded: async () => {
        const config = await readConfig(dir);
        const reader = await CheckpointReader.open(dir);
        try {
          const wanted = checkpointWeights(config);
          checkCheckpointTensors(reader, wanted);
          for (const e of wanted) {
            const t = await reader.read(e.hfName);
            const ref = this.base.tensors.get(e.hfName);
            if (!ref) throw new OracleFailure(`loaded '${e.hfName}', which the original lacks`);
            if (t.shape.join(',') !== ref.shape.join(',') || !sameBytes(t.data, ref.data)) {
              throw new OracleFailure(`tensor '${e.hfName}' loaded with other values or shape`);
            }
          }
        } finally {
          await reader.close();
        }
      },
    };
  }

  private async convertedMutant(rng: Rng): Promise<{ what: string; loaded: () => Promise<void> }> {
    const dir = join(this.work, 'converted');
    const files = this.base.convertedFiles;
    // Restore every file from the previous mutant.
    for (const [rel, bytes] of files) writeFileSync(join(dir, rel), bytes);
    const kind = pick(rng, [
      'siglip.json',
      'siglip.json',
      'model.json',
      'model.json-unverified',
      'shard',
    ]);
    const towers = pick(rng, ['both', 'vision', 'text'] as const);
    let verify = true;
    let what: string;
    if (kind === 'shard') {
      const shards = [...files.keys()].filter((f) => f.endsWith('.bin'));
      const rel = pick(rng, shards);
      const bytes = files.get(rel)!.slice();
      const op = int(rng, 3);
      if (op === 0 && bytes.length) bytes[int(rng, bytes.length)] ^= 1 << int(rng, 8);
      const out =
        op === 1
          ? bytes.subarray(0, int(rng, bytes.length))
          : op === 2
            ? new Uint8Array([...bytes, 0])
            : bytes;
      writeFileSync(join(dir, rel), out);
      what = `${rel}: ${['flip', 'truncate', 'extend'][op]}`;
    } else {
      const rel =
        kind === 'siglip.json'
          ? 'siglip.json'
          : pick(rng, ['vision/model.json', 'text/model.json', 'scores/model.json']);
      verify = kind !== 'model.json-unverified';
      // Numbers inside modelTopology are trusted when unverified (covered by the SHA-256 otherwise): mutate the
      // manifest and metadata there.
      const prefer = verify ? undefined : (p: string) => !p.startsWith('modelTopology');
      const m = mutateJsonText(rng, new TextDecoder().decode(files.get(rel)), prefer);
      writeFileSync(join(dir, rel), m.text);
      what = `${rel}${verify ? '' : ' (verify: false)'}: ${m.what}`;
    }
    return {
      what: `${what} [towers ${towers}]`,
      loaded: async () => {
        const model = await loadSiglip(dir, { verify, towers, onWarning: () => undefined });
        try {
          for (const [tower, m] of Object.entries(model.parts)) {
            for (const w of m?.weights ?? []) {
              const ref = this.base.convertedWeights.get(`${tower}:${w.originalName}`);
              const t = w.read();
              if (!ref || !sameBytes(t.dataSync() as Float32Array, ref)) {
                throw new OracleFailure(
                  `${tower} weight ${w.originalName} loaded with other values`,
                );
              }
            }
          }
        } finally {
          model.dispose();
        }
      },
    };
  }

  async cleanup(): Promise<void> {
    await fsp.rm(this.work, { recursive: true, force: true });
  }

  /** The fixture folder (for messages). */
  get fixture(): string {
    return this.tiny;
  }
}

/**
 * Opens a (mutated) safetensors file and reads every tensor; checks each against an independent reading of the
 * file's bytes: inside the file, the bytes at the header's offsets, the header's shape.
 */
async function checkSafetensorsFile(path: string, bytes: Uint8Array): Promise<void> {
  const file = await SafetensorsFile.open(path);
  try {
    const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<
      string,
      { dtype: string; shape: number[]; data_offsets: [number, number] }
    >;
    for (const name of file.names) {
      const h = header[name];
      if (!h) throw new OracleFailure(`read tensor '${name}', which the header does not have`);
      const t = await file.read(name);
      const [b, e] = h.data_offsets;
      if (8 + n + e > bytes.length) throw new OracleFailure(`'${name}' extends past the file end`);
      if (t.shape.join(',') !== h.shape.join(','))
        throw new OracleFailure(`'${name}' shape differs`);
      const numel = h.shape.reduce((a, c) => a * c, 1);
      if (t.data.length !== numel)
        throw new OracleFailure(`'${name}' has ${t.data.length} values, shape says ${numel}`);
      if (
        (h.dtype === 'F32' || h.dtype === 'I32' || h.dtype === 'U8' || h.dtype === 'BOOL') &&
        !sameBytes(t.data, bytes.subarray(8 + n + b, 8 + n + e))
      ) {
        throw new OracleFailure(`'${name}' values differ from the file's bytes at its offsets`);
      }
    }
    const headerNames = Object.keys(header).filter((k) => k !== '__metadata__');
    if (headerNames.length !== file.names.length) {
      throw new OracleFailure(
        `the header has ${headerNames.length} tensors, the reader ${file.names.length}`,
      );
    }
  } finally {
    await file.close();
  }
}
