// Seeded mutations of safetensors files and JSON documents, for the reader fuzzer (bench/fuzz/targets.ts).
import { seededRandom } from '../../src/util/random.js';

export type Rng = () => number;

/** The random source of mutant `index` of a run seeded with `seed`: every mutant reproduces on its own. */
export function mutantRng(seed: number, index: number): Rng {
  const r = seededRandom(
    (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca6b)) >>> 0,
  );
  r(); // decorrelate neighbouring seeds
  return r;
}

export const int = (rng: Rng, n: number) => Math.floor(rng() * n);
export const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[int(rng, xs.length)];

/** Values that break parsers: wrong types, edge numbers, absurd sizes. */
const ODD_VALUES: readonly unknown[] = [
  null,
  true,
  false,
  '',
  'x',
  '1',
  '-1',
  0,
  -1,
  1.5,
  -0.5,
  1e-300,
  1e308,
  2 ** 31,
  2 ** 31 - 1,
  2 ** 32,
  2 ** 53,
  2 ** 53 + 2,
  Number.MAX_SAFE_INTEGER,
  [],
  [0],
  [-1, 2],
  [1e9, 1e9],
  {},
  { a: 1 },
];

/** A JSON value somewhere in a document: its parent, key and dotted path. */
interface Slot {
  parent: Record<string, unknown> | unknown[];
  key: string | number;
  value: unknown;
  path: string;
}

function slots(root: unknown): Slot[] {
  const out: Slot[] = [];
  const walk = (v: unknown, path: string) => {
    if (v === null || typeof v !== 'object') return;
    for (const [k, x] of Object.entries(v)) {
      const p = path ? `${path}.${k}` : k;
      out.push({
        parent: v as Record<string, unknown>,
        key: Array.isArray(v) ? Number(k) : k,
        value: x,
        path: p,
      });
      walk(x, p);
    }
  };
  walk(root, '');
  return out;
}

function setSlot(s: Slot, value: unknown): void {
  (s.parent as Record<string | number, unknown>)[s.key] = value;
}

function deleteSlot(s: Slot): void {
  if (Array.isArray(s.parent)) s.parent.splice(s.key as number, 1);
  else delete (s.parent as Record<string, unknown>)[s.key as string];
}

function tweakNumber(rng: Rng, n: number): unknown {
  switch (int(rng, 9)) {
    case 0:
      return n + 1;
    case 1:
      return n - 1;
    case 2:
      return n * 2;
    case 3:
      return n * 1000;
    case 4:
      return -n;
    case 5:
      return 0;
    case 6:
      return n + 0.5;
    case 7:
      return n * 2 ** 20;
    default:
      return String(n);
  }
}

/**
 * One structural mutation of a parsed JSON document (in place; returns a description): delete a field, give it
 * an odd value or another type, nudge a number (absurd sizes included), duplicate or drop an array element.
 * `prefer` narrows the choice to slots whose path passes it, when any does.
 */
export function mutateJsonValue(
  rng: Rng,
  root: unknown,
  prefer?: (path: string) => boolean,
): string {
  let all = slots(root);
  if (prefer) {
    const preferred = all.filter((x) => prefer(x.path));
    if (preferred.length) all = preferred;
  }
  if (!all.length) return 'nothing to mutate';
  const s = pick(rng, all);
  const op = int(rng, 10);
  if (op === 0) {
    deleteSlot(s);
    return `delete ${s.path}`;
  }
  if (op <= 3 && typeof s.value === 'number') {
    const v = tweakNumber(rng, s.value);
    setSlot(s, v);
    return `${String(s.key)}: ${s.value} -> ${JSON.stringify(v)}`;
  }
  if (op === 4 && Array.isArray(s.value) && s.value.length) {
    const a = s.value;
    if (rng() < 0.5) a.push(structuredClone(a[int(rng, a.length)]));
    else a.splice(int(rng, a.length), 1);
    return `resize array ${String(s.key)}`;
  }
  if (op === 5 && typeof s.value === 'string') {
    const v =
      rng() < 0.5
        ? s.value.slice(0, int(rng, s.value.length))
        : s.value + pick(rng, ['x', '/', '..', '0']);
    setSlot(s, v);
    return `string ${String(s.key)} -> ${JSON.stringify(v).slice(0, 60)}`;
  }
  const v = structuredClone(pick(rng, ODD_VALUES));
  setSlot(s, v);
  return `${String(s.key)} -> ${JSON.stringify(v)}`;
}

/** One mutation of JSON text: structural (most of the time), or a byte flip, insertion or truncation. */
export function mutateJsonText(
  rng: Rng,
  text: string,
  prefer?: (path: string) => boolean,
): { text: string; what: string } {
  const r = rng();
  if (r < 0.75) {
    const doc = JSON.parse(text) as unknown;
    const what = mutateJsonValue(rng, doc, prefer);
    return { text: JSON.stringify(doc), what };
  }
  const bytes = new TextEncoder().encode(text);
  if (r < 0.85) {
    const at = int(rng, bytes.length);
    bytes[at] = pick(
      rng,
      [0x22, 0x7b, 0x7d, 0x5b, 0x5d, 0x2c, 0x3a, 0x30, 0x39, 0x2d, 0xff, 0x00, 0x5c],
    );
    return { text: new TextDecoder().decode(bytes), what: `byte ${at}` };
  }
  if (r < 0.92) {
    const at = int(rng, text.length);
    return {
      text: text.slice(0, at) + pick(rng, ['"', '{', ']', ',', '1e999', 'null']) + text.slice(at),
      what: `insert at ${at}`,
    };
  }
  const at = int(rng, text.length);
  return { text: text.slice(0, at), what: `truncate at ${at}` };
}

/** The parts of a safetensors file. */
export interface SafetensorsParts {
  header: Record<string, unknown>;
  data: Uint8Array;
}

export function splitSafetensors(file: Uint8Array): SafetensorsParts {
  const n = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(file.subarray(8, 8 + n))) as Record<
    string,
    unknown
  >;
  return { header, data: file.subarray(8 + n) };
}

export function joinSafetensors(
  header: unknown,
  data: Uint8Array,
  lengthOverride?: bigint,
): Uint8Array {
  const h = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, lengthOverride ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

const DTYPES = [
  'F64',
  'F32',
  'F16',
  'BF16',
  'I64',
  'I32',
  'I16',
  'I8',
  'U8',
  'BOOL',
  'F8_E4M3',
  'f32',
  '',
  7,
  null,
];

/**
 * One mutation of a safetensors file. Kinds: `header-byte`, `header-length`, `offsets`, `dtype`, `shape`,
 * `entry` (delete / rename / duplicate / odd value), `metadata`, `truncate`, `append`, and, when `data` is allowed,
 * `data` (a flipped data byte: a different valid file).
 */
export function mutateSafetensors(
  rng: Rng,
  file: Uint8Array,
  opts: { data?: boolean } = {},
): { bytes: Uint8Array; what: string } {
  const kinds = [
    'header-byte',
    'header-byte',
    'header-length',
    'offsets',
    'offsets',
    'dtype',
    'shape',
    'shape',
    'entry',
    'metadata',
    'truncate',
    'append',
    ...(opts.data ? ['data'] : []),
  ];
  const kind = pick(rng, kinds);
  const n = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
  const { header, data } = splitSafetensors(file);
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  const name = pick(rng, names);
  const entry = header[name] as { dtype: unknown; shape: unknown; data_offsets: unknown };
  switch (kind) {
    case 'header-byte': {
      const out = file.slice();
      const at = 8 + int(rng, n);
      out[at] =
        rng() < 0.5
          ? int(rng, 256)
          : pick(
              rng,
              [
                0x22, 0x7b, 0x7d, 0x5b, 0x5d, 0x2c, 0x3a, 0x30, 0x31, 0x39, 0x2d, 0x2e, 0x65, 0x20,
                0x5c,
              ],
            );
      return { bytes: out, what: `header byte ${at}: ${file[at]} -> ${out[at]}` };
    }
    case 'header-length': {
      const size = BigInt(file.length);
      const v = pick(rng, [
        0n,
        1n,
        2n,
        BigInt(n - 1),
        BigInt(n + 1),
        BigInt(n - 8),
        BigInt(n + 8),
        size,
        size - 8n,
        size - 7n,
        2n ** 31n,
        2n ** 32n,
        2n ** 53n,
        2n ** 63n,
        2n ** 64n - 1n,
        BigInt(int(rng, file.length)),
      ]);
      const out = file.slice();
      new DataView(out.buffer).setBigUint64(0, BigInt.asUintN(64, v), true);
      return { bytes: out, what: `header length ${n} -> ${v}` };
    }
    case 'offsets': {
      const [b, e] = entry.data_offsets as [number, number];
      const d = pick(rng, [1, -1, 2, 4, -4, 8, e - b, b - e, data.length, 2 ** 32, 2 ** 53, 0.5]);
      const v = pick(rng, [
        [b + d, e + d],
        [b, e + d],
        [b + d, e],
        [e, b],
        [b, b],
        [b],
        [b, e, e],
        [String(b), e],
        [-b - 1, e],
        [b, data.length + d],
        null,
      ]);
      entry.data_offsets = v;
      return {
        bytes: joinSafetensors(header, data),
        what: `${name}.data_offsets -> ${JSON.stringify(v)}`,
      };
    }
    case 'dtype': {
      entry.dtype = pick(rng, DTYPES);
      return {
        bytes: joinSafetensors(header, data),
        what: `${name}.dtype -> ${JSON.stringify(entry.dtype)}`,
      };
    }
    case 'shape': {
      const shape = [...(entry.shape as number[])];
      const i = int(rng, Math.max(1, shape.length));
      let v: unknown;
      switch (int(rng, 8)) {
        case 0:
          shape[i] = (shape[i] ?? 1) + pick(rng, [1, -1]);
          v = shape;
          break;
        case 1:
          shape[i] = pick(rng, [0, -1, 1.5, 2 ** 31, 2 ** 32, 2 ** 53, 1e308]);
          v = shape;
          break;
        case 2:
          v = [...shape, pick(rng, [1, 2, 0])];
          break;
        case 3:
          v = shape.slice(1);
          break;
        case 4:
          v = [...shape].reverse();
          break;
        case 5:
          v = shape.length > 1 ? [shape.reduce((a, c) => a * c, 1)] : [1, ...shape];
          break;
        case 6:
          v = [2 ** 26, 2 ** 26, 2 ** 26, 0];
          break;
        default:
          v = pick(rng, [null, 'x', {}, [[1]], shape.map(String)]);
      }
      entry.shape = v;
      return {
        bytes: joinSafetensors(header, data),
        what: `${name}.shape -> ${JSON.stringify(v)}`,
      };
    }
    case 'entry': {
      const op = int(rng, 4);
      if (op === 0) delete header[name];
      else if (op === 1) {
        header[`${name}x`] = entry;
        delete header[name];
      } else if (op === 2) header[`${name}.copy`] = structuredClone(entry);
      else header[name] = structuredClone(pick(rng, ODD_VALUES));
      return { bytes: joinSafetensors(header, data), what: `entry ${name} op ${op}` };
    }
    case 'metadata': {
      header.__metadata__ = structuredClone(
        pick(rng, [...ODD_VALUES, { format: 1 }, { format: 'pt', x: null }]),
      );
      return {
        bytes: joinSafetensors(header, data),
        what: `__metadata__ -> ${JSON.stringify(header.__metadata__)}`,
      };
    }
    case 'truncate': {
      const at = pick(rng, [
        int(rng, 8),
        8 + int(rng, n),
        8 + n + int(rng, data.length),
        file.length - 1,
      ]);
      return { bytes: file.slice(0, at), what: `truncate at ${at} of ${file.length}` };
    }
    case 'append': {
      const extra = new Uint8Array(1 + int(rng, 64)).map(() => int(rng, 256));
      const out = new Uint8Array(file.length + extra.length);
      out.set(file);
      out.set(extra, file.length);
      return { bytes: out, what: `append ${extra.length} bytes` };
    }
    default: {
      const out = file.slice();
      const at = 8 + n + int(rng, data.length);
      out[at] ^= 1 << int(rng, 8);
      return { bytes: out, what: `data byte ${at}` };
    }
  }
}
