// Fine-tuning data: image-caption records from a CSV / JSONL file or a `<class>/<image>` folder, each record
// remembering where it came from (file and line) so that every later error can name it.
import { parse as parseCsv } from 'csv-parse/sync';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { dirname, extname, isAbsolute, join, resolve } from 'node:path';
import { seededRandom } from '../util/random.js';

/** One image-caption pair. */
export interface PairRecord {
  /** Absolute path of the image. */
  image: string;
  caption: string;
  /** Where the record is defined: `data.csv:12` (file and line), or the image path for class folders. */
  where: string;
  /** Class index (class folders only). */
  label?: number;
}

/** A data set of pairs, plus the class names when it came from a class folder. */
export interface PairData {
  /** The data file or folder as given. */
  source: string;
  records: PairRecord[];
  /** Class folders: the class names (sorted), record.label indexes them. */
  classes?: string[];
}

export interface DataOptions {
  /** CSV / JSONL column holding the image path. Default `image`. */
  imageColumn?: string;
  /** CSV / JSONL column holding the caption. Default `caption`. */
  captionColumn?: string;
  /** Class folders: the caption of an image of class `c` is the template with `{}` replaced by `c`. */
  template?: string;
}

export const DEFAULT_FOLDER_TEMPLATE = 'a photo of {}';
const IMAGE_EXT = /\.(png|jpe?g|webp|gif|avif|tiff?)$/i;

function resolveAgainst(base: string, p: string): string {
  return isAbsolute(p) ? p : resolve(base, p);
}

function fieldOf(
  row: Record<string, unknown>,
  column: string,
  where: string,
  what: 'image' | 'caption',
  flag: string,
): string {
  const v = row[column];
  if (v === undefined) {
    throw new Error(
      `${where}: no ${what} column "${column}" (columns: ${Object.keys(row).join(', ') || 'none'}); ` +
        `name it with ${flag}`,
    );
  }
  if (typeof v !== 'string' && typeof v !== 'number') {
    throw new Error(`${where}: the ${what} column "${column}" must hold text, got ${typeof v}`);
  }
  const s = String(v).trim();
  if (s === '') throw new Error(`${where}: the ${what} column "${column}" is empty`);
  return s;
}

async function readCsvRecords(path: string, text: string, o: DataOptions): Promise<PairRecord[]> {
  const imageColumn = o.imageColumn ?? 'image';
  const captionColumn = o.captionColumn ?? 'caption';
  let rows: { record: Record<string, string>; info: { lines: number } }[];
  try {
    rows = parseCsv(text, {
      columns: true,
      skip_empty_lines: true,
      trim: true,
      info: true,
      bom: true,
    }) as typeof rows;
  } catch (e) {
    throw new Error(`${path}: not valid CSV (${(e as Error).message})`, { cause: e });
  }
  const header = text.split(/\r?\n/, 1)[0] ?? '';
  const base = dirname(resolve(path));
  return rows.map(({ record, info }) => {
    const where = `${path}:${info.lines}`;
    if (rows.length > 0 && record[captionColumn] === undefined) {
      throw new Error(
        `${path}: no caption column "${captionColumn}" in the header (${header}); name it with --caption-column`,
      );
    }
    if (record[imageColumn] === undefined) {
      throw new Error(
        `${path}: no image column "${imageColumn}" in the header (${header}); name it with --image-column`,
      );
    }
    return {
      image: resolveAgainst(base, fieldOf(record, imageColumn, where, 'image', '--image-column')),
      caption: fieldOf(record, captionColumn, where, 'caption', '--caption-column'),
      where,
    };
  });
}

function readJsonlRecords(path: string, text: string, o: DataOptions): PairRecord[] {
  const imageColumn = o.imageColumn ?? 'image';
  const captionColumn = o.captionColumn ?? 'caption';
  const base = dirname(resolve(path));
  const out: PairRecord[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    if (!line.trim()) return;
    const where = `${path}:${i + 1}`;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch (e) {
      throw new Error(`${where}: not valid JSON (${(e as Error).message})`, { cause: e });
    }
    if (typeof row !== 'object' || row === null || Array.isArray(row)) {
      throw new Error(`${where}: expected a JSON object per line`);
    }
    const r = row as Record<string, unknown>;
    out.push({
      image: resolveAgainst(base, fieldOf(r, imageColumn, where, 'image', '--image-column')),
      caption: fieldOf(r, captionColumn, where, 'caption', '--caption-column'),
      where,
    });
  });
  return out;
}

async function readClassFolder(dir: string, o: DataOptions): Promise<PairData> {
  const template = o.template ?? DEFAULT_FOLDER_TEMPLATE;
  if (!template.includes('{}')) {
    throw new Error(`--template ${JSON.stringify(template)}: must contain {} (the class name)`);
  }
  const entries = await fsp.readdir(dir, { withFileTypes: true });
  const classes = entries
    .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
    .map((e) => e.name)
    .sort();
  const records: PairRecord[] = [];
  const used: string[] = [];
  for (const c of classes) {
    const files = (await fsp.readdir(join(dir, c))).filter((f) => IMAGE_EXT.test(f)).sort();
    if (files.length === 0) continue;
    const label = used.length;
    used.push(c);
    const caption = template.replaceAll('{}', c.replaceAll('_', ' '));
    for (const f of files) {
      const image = resolve(dir, c, f);
      records.push({ image, caption, where: join(dir, c, f), label });
    }
  }
  if (used.length === 1) {
    throw new Error(
      `${dir}: only one class folder with images (${used[0]}); contrastive fine-tuning and zero-shot ` +
        'evaluation need at least two classes (<folder>/<class>/<image>)',
    );
  }
  return { source: dir, records, classes: used };
}

/** Reads a data file (`.csv`, `.jsonl` / `.ndjson`) or a class folder. Relative image paths resolve against the file's folder. */
export async function readPairData(source: string, o: DataOptions = {}): Promise<PairData> {
  let stat;
  try {
    stat = await fsp.stat(source);
  } catch (e) {
    throw new Error(`${source}: cannot read the data (${(e as NodeJS.ErrnoException).code ?? e})`, {
      cause: e,
    });
  }
  let data: PairData;
  if (stat.isDirectory()) {
    data = await readClassFolder(source, o);
  } else {
    const ext = extname(source).toLowerCase();
    const text = await fsp.readFile(source, 'utf8');
    let records: PairRecord[];
    if (ext === '.csv') records = await readCsvRecords(source, text, o);
    else if (ext === '.jsonl' || ext === '.ndjson') records = readJsonlRecords(source, text, o);
    else {
      throw new Error(
        `${source}: data must be a .csv or .jsonl file (image + caption columns) or a folder of <class>/<image>`,
      );
    }
    data = { source, records };
  }
  if (data.records.length === 0) {
    throw new Error(
      `${source}: the data set is empty (${stat.isDirectory() ? 'no images in <class>/ subfolders' : 'no rows'})`,
    );
  }
  return data;
}

/** Checks every image exists and its header decodes (no pixel decoding), naming the record on failure. */
export async function checkImages(data: PairData): Promise<void> {
  const { default: sharp } = await import('sharp');
  const queue = [...data.records];
  const work = async () => {
    for (let r = queue.shift(); r; r = queue.shift()) {
      const rec = r;
      try {
        await fsp.access(rec.image);
      } catch (e) {
        throw new Error(
          `${rec.where}: image ${rec.image} is missing or unreadable (${(e as NodeJS.ErrnoException).code ?? e})`,
          { cause: e },
        );
      }
      try {
        const m = await sharp(rec.image).metadata();
        if (!m.width || !m.height) throw new Error('no image size');
      } catch (e) {
        throw new Error(
          `${rec.where}: ${rec.image} is not a readable image (${(e as Error).message})`,
          {
            cause: e,
          },
        );
      }
    }
  };
  await Promise.all(Array.from({ length: 8 }, work));
}

/** Splits off a seeded random fraction of the records as validation data. */
export function splitValidation(
  data: PairData,
  fraction: number,
  seed: number,
): { train: PairData; val: PairData } {
  if (!(fraction > 0 && fraction < 1)) {
    throw new Error(`--val-split ${fraction}: expected a fraction between 0 and 1, e.g. 0.1`);
  }
  const n = data.records.length;
  const k = Math.round(n * fraction);
  if (k < 1 || k >= n) {
    throw new Error(
      `--val-split ${fraction}: ${data.source} has ${n} pairs, leaving ${k} for validation and ${n - k} for training; ` +
        'both need at least one',
    );
  }
  const order = shuffledIndices(n, seededRandom(seed ^ 0x5eed));
  const held = new Set(order.slice(0, k));
  const pick = (keep: boolean) => data.records.filter((_, i) => held.has(i) !== keep);
  return {
    train: { ...data, records: pick(true) },
    val: { ...data, source: `${data.source} (--val-split ${fraction})`, records: pick(false) },
  };
}

/** Fisher-Yates shuffle of 0..n-1 with the given random source. */
export function shuffledIndices(n: number, rand: () => number): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

async function fileHash(path: string): Promise<string> {
  return createHash('sha1')
    .update(await fsp.readFile(path))
    .digest('hex');
}

/**
 * Images that occur in both sets (same file, or same bytes under another name). Returns up to `max` examples
 * as `val record -> train record` descriptions.
 */
export async function findOverlap(
  train: PairData,
  val: PairData,
  max = 3,
): Promise<{
  count: number;
  examples: string[];
}> {
  const byHash = new Map<string, PairRecord>();
  const byPath = new Map<string, PairRecord>();
  for (const r of train.records) byPath.set(r.image, r);
  for (const r of train.records) byHash.set(await fileHash(r.image), r);
  let count = 0;
  const examples: string[] = [];
  for (const r of val.records) {
    const hit = byPath.get(r.image) ?? byHash.get(await fileHash(r.image));
    if (!hit) continue;
    count++;
    if (examples.length < max) examples.push(`${r.where} (${r.image}) = ${hit.where}`);
  }
  return { count, examples };
}

/** A short fingerprint of the records (paths and captions), to tell on resume that the data changed. */
export function dataFingerprint(data: PairData): string {
  const h = createHash('sha1');
  for (const r of data.records) h.update(`${r.image}\t${r.caption}\n`);
  return h.digest('hex').slice(0, 16);
}
