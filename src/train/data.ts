import * as tf from '@tensorflow/tfjs';
import type { PairBatch } from './forward.js';
import { seededRandom } from '../util/random.js';

/** Image-text pairs held in memory: `pixelValues` `[N, C, H, W]`, `inputIds` `[N, L]` int32, pair i = row i. */
export interface PairArrays {
  pixelValues: tf.Tensor;
  inputIds: tf.Tensor;
}

/** Pairs from arrays, or a `tf.data.Dataset` whose elements are already batches `{pixelValues, inputIds}`. */
export type PairSource = PairArrays | tf.data.Dataset<tf.TensorContainer>;

export interface BatchOptions {
  batchSize: number;
  /** Shuffle the rows of arrays each pass (datasets: shuffle them yourself). Default false. */
  shuffle?: boolean;
  /** Seed of the shuffle. */
  seed?: number;
  /** Skip a last batch smaller than batchSize (arrays). Default false. */
  dropRemainder?: boolean;
}

export { seededRandom };

export function isPairArrays(src: PairSource): src is PairArrays {
  return (src as PairArrays).pixelValues instanceof tf.Tensor;
}

function batchFromElement(e: tf.TensorContainer, where: string): PairBatch {
  const o = e as Record<string, tf.Tensor | undefined>;
  const pixelValues = o.pixelValues ?? o.pixel_values;
  const inputIds = o.inputIds ?? o.input_ids;
  if (!(pixelValues instanceof tf.Tensor) || !(inputIds instanceof tf.Tensor)) {
    throw new Error(`${where}: dataset elements must be {pixelValues, inputIds} tensors`);
  }
  return { pixelValues, inputIds: inputIds.dtype === 'int32' ? inputIds : inputIds.toInt() };
}

/**
 * Iterates over batches of pairs. Arrays are sliced (and shuffled when asked); every yielded batch is new and the
 * consumer disposes it with `disposeBatch`. Dataset elements are yielded as they come (also to be disposed).
 */
export async function* iterateBatches(
  src: PairSource,
  opts: BatchOptions,
): AsyncGenerator<PairBatch> {
  if (!isPairArrays(src)) {
    const it = await src.iterator();
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield batchFromElement(r.value, 'dataset');
    }
  }
  const n = src.pixelValues.shape[0];
  if (src.inputIds.shape[0] !== n) {
    throw new Error(
      `pairs: pixelValues has ${n} rows but inputIds has ${src.inputIds.shape[0]} (one caption per image)`,
    );
  }
  if (!(opts.batchSize >= 1)) throw new Error(`batchSize must be >= 1, got ${opts.batchSize}`);
  const order = Array.from({ length: n }, (_, i) => i);
  if (opts.shuffle) {
    const rand = seededRandom(opts.seed ?? 0);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
  }
  for (let start = 0; start < n; start += opts.batchSize) {
    const idx = order.slice(start, start + opts.batchSize);
    if (opts.dropRemainder && idx.length < opts.batchSize) return;
    const batch = tf.tidy(() => {
      const i = tf.tensor1d(idx, 'int32');
      return {
        pixelValues: tf.gather(src.pixelValues, i),
        inputIds: tf.gather(src.inputIds.toInt(), i),
      };
    });
    yield batch;
  }
}

export function disposeBatch(b: PairBatch): void {
  tf.dispose([b.pixelValues, b.inputIds]);
}

/** Splits arrays into a training part and a held-out part (the last `heldOut` rows, or a fraction). */
export function splitPairs(
  src: PairArrays,
  heldOut: number,
): { train: PairArrays; test: PairArrays } {
  const n = src.pixelValues.shape[0];
  const k = heldOut < 1 ? Math.round(n * heldOut) : heldOut;
  if (k < 1 || k >= n) throw new Error(`splitPairs: cannot hold out ${heldOut} of ${n} pairs`);
  const cut = (t: tf.Tensor, b: number, e: number) => t.slice(b, e - b);
  return {
    train: { pixelValues: cut(src.pixelValues, 0, n - k), inputIds: cut(src.inputIds, 0, n - k) },
    test: { pixelValues: cut(src.pixelValues, n - k, n), inputIds: cut(src.inputIds, n - k, n) },
  };
}

/** One line of a captions file. */
export interface CaptionRecord {
  /** Image path, relative to the captions file's folder unless absolute. */
  file: string;
  caption: string;
}

/**
 * Reads a captions file: JSONL (`{"file": ..., "caption": ...}` per line) or CSV with a header row naming the
 * columns `file` and `caption` (quoted fields as RFC 4180). Paths come back resolved against the file's folder.
 */
export async function readCaptions(path: string): Promise<CaptionRecord[]> {
  // Node-only (csv-parse needs Buffer), imported here so that the training API bundles for the browser (src/web.ts).
  const { promises: fsp } = await import('node:fs');
  const { dirname, extname, isAbsolute, join } = await import('node:path');
  const { parse: parseCsv } = await import('csv-parse/sync');
  const text = await fsp.readFile(path, 'utf8').catch((e: Error) => {
    throw new Error(`${path}: cannot read the captions file (${e.message})`, { cause: e });
  });
  const base = dirname(path);
  const resolvePath = (f: string) => (isAbsolute(f) ? f : join(base, f));
  const ext = extname(path).toLowerCase();
  const out: CaptionRecord[] = [];
  if (ext === '.jsonl' || ext === '.ndjson') {
    text.split(/\r?\n/).forEach((line, i) => {
      if (!line.trim()) return;
      let o: { file?: unknown; caption?: unknown };
      try {
        o = JSON.parse(line) as typeof o;
      } catch (e) {
        throw new Error(`${path}:${i + 1}: not valid JSON (${(e as Error).message})`, { cause: e });
      }
      if (typeof o.file !== 'string' || typeof o.caption !== 'string') {
        throw new Error(`${path}:${i + 1}: needs string fields "file" and "caption"`);
      }
      out.push({ file: resolvePath(o.file), caption: o.caption });
    });
    return out;
  }
  if (ext !== '.csv') throw new Error(`${path}: captions must be a .jsonl or .csv file`);
  let rows: Record<string, string>[];
  try {
    rows = parseCsv(text, { columns: true, skip_empty_lines: true, trim: true });
  } catch (e) {
    throw new Error(`${path}: not valid CSV (${(e as Error).message})`, { cause: e });
  }
  rows.forEach((r, i) => {
    if (typeof r.file !== 'string' || typeof r.caption !== 'string') {
      throw new Error(
        `${path}: row ${i + 2} lacks a "file" or "caption" column (the header must name both)`,
      );
    }
    out.push({ file: resolvePath(r.file), caption: r.caption });
  });
  return out;
}

export interface CaptionFolderOptions {
  /** Loads one image as `[C, H, W]` float32 pixel values (the model's preprocessing). */
  loadImage: (path: string) => Promise<tf.Tensor> | tf.Tensor;
  /** Tokenizes captions to `[n, L]` int32 ids (padded as the model expects). */
  tokenize: (captions: string[]) => Promise<tf.Tensor> | tf.Tensor;
  batchSize: number;
}

/**
 * A `tf.data.Dataset` of batches `{pixelValues, inputIds}` from a captions file (see `readCaptions`): images are
 * loaded and captions tokenized one batch at a time, so the folder never sits in memory.
 */
export async function captionFolderDataset(
  captionsFile: string,
  opts: CaptionFolderOptions,
): Promise<{ dataset: tf.data.Dataset<tf.TensorContainer>; records: CaptionRecord[] }> {
  const records = await readCaptions(captionsFile);
  if (records.length === 0) throw new Error(`${captionsFile}: no captions`);
  const size = opts.batchSize;
  async function* batches(): AsyncGenerator<tf.TensorContainer> {
    for (let s = 0; s < records.length; s += size) {
      const part = records.slice(s, s + size);
      const images: tf.Tensor[] = [];
      try {
        for (const r of part) images.push(await opts.loadImage(r.file));
        const ids = await opts.tokenize(part.map((r) => r.caption));
        const pixelValues = tf.stack(images);
        yield { pixelValues, inputIds: ids };
      } finally {
        tf.dispose(images);
      }
    }
  }
  // tf.data accepts async generators at run time; its typings only name sync ones.
  const dataset = tf.data.generator(batches as unknown as () => Iterator<tf.TensorContainer>);
  return { dataset, records };
}
