// Loading one weights-manifest group from local files with float32 weights memory-mapped (Node, a backend that keeps
// the arrays it is given: cpu and native). Each float32 weight becomes a tensor whose values are a view of its
// bytes in the shard files, mapped privately (no copy, nothing resident until read); weights that cannot be mapped
// (quantized, misaligned, or spanning shard files off page boundaries) are read and decoded as usual.
import * as tf from '@tensorflow/tfjs';
import { ArtifactFormatError, FileAccessError } from '../util/errors.js';
import { TOKEN_TABLE_WEIGHT } from '../layers/text_embeddings.js';
import type { ArtifactSource, FileRange, MappableFiles } from './source.js';
import { entryBytes, expectedShardSizes, type TowerLoadOptions } from './tower.js';

/** How a loaded model's weight bytes are held. */
export interface WeightStorage {
  /** Bytes of float32 weights that are views of memory-mapped files. */
  mappedBytes: number;
  /** Bytes read into memory (weights that could not be mapped, or all of them without mapping). */
  copiedBytes: number;
}

/** Embedding tables that are only read at the rows looked up (not position tables, which are read whole). */
function isTable(spec: tf.io.WeightsManifestEntry): boolean {
  return spec.name.endsWith(TOKEN_TABLE_WEIGHT);
}

/** The byte ranges of the shard files that hold bytes [start, start + length) of the group's stream. */
function rangesOf(
  paths: readonly string[],
  starts: readonly number[],
  sizes: readonly number[],
  start: number,
  length: number,
): FileRange[] {
  const out: FileRange[] = [];
  const end = start + length;
  for (let s = 0; s < paths.length; s++) {
    const a = Math.max(start, starts[s]);
    const b = Math.min(end, starts[s] + sizes[s]);
    if (b > a) out.push({ rel: paths[s], offset: a - starts[s], length: b - a });
  }
  return out;
}

/**
 * Checks every shard (size; SHA-256 on a verified source), in parallel up to `concurrency`. When shards fail, the
 * error is the one of the first failing shard in manifest order, whichever worker finished first (no shard after
 * a failed one is started).
 */
async function checkShards(
  files: MappableFiles,
  paths: readonly string[],
  concurrency: number,
): Promise<number[]> {
  const sizes = new Array<number>(paths.length);
  const errors = new Map<number, unknown>();
  let firstFailed = paths.length;
  let next = 0;
  const worker = async () => {
    while (next < firstFailed) {
      const i = next++;
      try {
        sizes[i] = await files.check(paths[i]);
      } catch (e) {
        errors.set(i, e);
        firstFailed = Math.min(firstFailed, i);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, paths.length) }, worker));
  if (errors.size > 0) throw errors.get(Math.min(...errors.keys()));
  return sizes;
}

export async function loadGroupMapped(
  source: ArtifactSource,
  files: MappableFiles,
  dir: string,
  group: tf.io.WeightsManifestConfig[number],
  variables: Map<string, tf.LayerVariable>,
  where: string,
  opts: TowerLoadOptions,
  onWeight: (bytes: number) => void,
): Promise<void> {
  const entries = group.weights.map((e) => ({ spec: e, bytes: entryBytes(e, where) }));
  const total = entries.reduce((s, e) => s + e.bytes, 0);
  const paths = group.paths.map((p) => dir + p);
  const sizes = await checkShards(files, paths, Math.max(1, opts.concurrency ?? 4));
  const expected = expectedShardSizes(total, paths.length, opts.shardBytes);
  const starts: number[] = [];
  let offset = 0;
  for (let s = 0; s < paths.length; s++) {
    if (expected.length && sizes[s] !== expected[s]) {
      throw new ArtifactFormatError(
        `${source.locate(paths[s])}: shard is ${sizes[s]} bytes, expected ${expected[s]} (truncated or corrupt file)`,
        source.locate(paths[s]),
      );
    }
    starts.push(offset);
    offset += sizes[s];
  }
  if (offset !== total) {
    const last = paths[paths.length - 1];
    throw new ArtifactFormatError(
      `${where}: the shard files hold ${offset} bytes, the weightsManifest needs ${total} ` +
        `(a shard such as ${last === undefined ? '(none listed)' : source.locate(last)} is truncated, ` +
        'missing data or has extra bytes)',
      where,
      'weightsManifest',
    );
  }
  const storage = opts.storage;
  let at = 0;
  for (const { spec, bytes } of entries) {
    const ranges = rangesOf(paths, starts, sizes, at, bytes);
    at += bytes;
    const mapped =
      bytes > 0 && spec.dtype === 'float32' && spec.quantization === undefined
        ? files.map(ranges, 4, isTable(spec))
        : undefined;
    let tensor: tf.Tensor | undefined;
    try {
      if (mapped) {
        tensor = tf.tensor(new Float32Array(mapped), spec.shape, 'float32');
      } else {
        const buf = bytes > 0 ? await files.read(ranges) : new Uint8Array(0);
        tensor = tf.io.decodeWeights(buf.buffer as ArrayBuffer, [spec])[spec.name];
      }
      variables.get(spec.name)!.write(tensor);
    } catch (e) {
      if (e instanceof ArtifactFormatError || e instanceof FileAccessError) throw e;
      throw new ArtifactFormatError(
        `${where}: weight '${spec.name}' cannot be loaded (${(e as Error).message})`,
        where,
        `weightsManifest.${spec.name}`,
        { cause: e },
      );
    } finally {
      tensor?.dispose();
    }
    if (storage) {
      if (mapped) storage.mappedBytes += bytes;
      else storage.copiedBytes += bytes;
    }
    onWeight(bytes);
  }
}
