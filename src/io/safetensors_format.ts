// The safetensors format, without any file access (shared by the Node reader and the browser).
// Layout: u64 little-endian header length N, N bytes of JSON header, then the data.

import { SafetensorsFormatError } from '../util/errors.js';

export { SafetensorsFormatError } from '../util/errors.js';

export type SafetensorsDtype =
  'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export const DTYPE_BYTES: Record<SafetensorsDtype, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

export type TypedArray = Float32Array | Int32Array | Uint8Array;

/** One entry of the header; `begin`/`end` are offsets relative to the start of the data. */
export interface TensorInfo {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

function isDtype(d: unknown): d is SafetensorsDtype {
  return typeof d === 'string' && Object.prototype.hasOwnProperty.call(DTYPE_BYTES, d);
}

/**
 * Parses and validates a header: every entry has a known dtype, a shape of non-negative integers, offsets inside
 * the data section whose length equals dtype size x element count, and no two tensors overlap. `fileName` names
 * the file in errors (all {@link SafetensorsFormatError}, with the tensor or field at fault).
 */
export function parseHeader(
  headerBytes: Uint8Array,
  dataSize: number,
  fileName: string,
): { tensors: Map<string, TensorInfo>; metadata: Record<string, string> } {
  const fail = (message: string, field?: string) =>
    new SafetensorsFormatError(`${fileName}: ${message}`, fileName, field);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch (e) {
    throw new SafetensorsFormatError(
      `${fileName}: safetensors header is not valid JSON in UTF-8 (${(e as Error).message})`,
      fileName,
      'header',
      { cause: e },
    );
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw fail('safetensors header must be a JSON object', 'header');
  }
  const tensors = new Map<string, TensorInfo>();
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (raw === null) continue;
      if (
        typeof raw !== 'object' ||
        Array.isArray(raw) ||
        !Object.values(raw as object).every((v) => typeof v === 'string')
      ) {
        throw fail('__metadata__ must be an object of strings', '__metadata__');
      }
      metadata = raw as Record<string, string>;
      continue;
    }
    const where = `tensor '${name}'`;
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
      throw fail(`${where}: entry is not an object`, name);
    }
    const entry = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (!isDtype(entry.dtype)) {
      throw fail(
        `${where}: unknown dtype ${JSON.stringify(entry.dtype)} (supported: ${Object.keys(DTYPE_BYTES).join(', ')})`,
        `${name}.dtype`,
      );
    }
    const shape = entry.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw fail(
        `${where}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`,
        `${name}.shape`,
      );
    }
    const offsets = entry.data_offsets;
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)
    ) {
      throw fail(
        `${where}: data_offsets ${JSON.stringify(offsets)} are not two non-negative integers`,
        `${name}.data_offsets`,
      );
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end || end > dataSize) {
      throw fail(
        `${where}: data_offsets [${begin}, ${end}] point outside the data section (${dataSize} bytes)`,
        `${name}.data_offsets`,
      );
    }
    const numel = (shape as number[]).reduce((a, b) => a * b, 1);
    const expected = numel * DTYPE_BYTES[entry.dtype];
    if (end - begin !== expected) {
      throw fail(
        `${where}: holds ${end - begin} bytes but ${entry.dtype} [${shape.join(', ')}] needs ${expected}`,
        `${name}.shape`,
      );
    }
    tensors.set(name, { name, dtype: entry.dtype, shape: shape as number[], begin, end });
  }
  // As the reference implementation: the tensors tile the data section exactly, without overlaps or holes. A
  // header length off by a few bytes (which shifts the data) or bytes after the data are refused.
  const sorted = [...tensors.values()]
    .filter((t) => t.end > t.begin)
    .sort((a, b) => a.begin - b.begin);
  let covered = 0;
  for (const t of sorted) {
    if (t.begin < covered) {
      const prev = sorted[sorted.indexOf(t) - 1];
      throw fail(
        `tensors '${prev.name}' and '${t.name}' overlap in the data section`,
        `${t.name}.data_offsets`,
      );
    }
    if (t.begin > covered) {
      throw fail(
        `bytes [${covered}, ${t.begin}) of the data section belong to no tensor (before '${t.name}'); ` +
          'the header length or offsets are wrong',
        `${t.name}.data_offsets`,
      );
    }
    covered = t.end;
  }
  if (covered !== dataSize) {
    throw fail(
      `the tensors cover ${covered} bytes of the ${dataSize}-byte data section (header length wrong, or ` +
        'bytes after the data)',
      'data_offsets',
    );
  }
  return { tensors, metadata };
}

const f16Table = (() => {
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) t[h] = sign * 2 ** -14 * (frac / 1024);
    else if (exp === 31) t[h] = frac ? NaN : sign * Infinity;
    else t[h] = sign * 2 ** (exp - 15) * (1 + frac / 1024);
  }
  return t;
})();

/** Converts a tensor's raw bytes: floats to Float32Array, integers to Int32Array, U8/BOOL to Uint8Array. */
export function decodeTensorBytes(
  bytes: Uint8Array,
  dtype: SafetensorsDtype,
  where: string,
): TypedArray {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = bytes.byteLength / DTYPE_BYTES[dtype];
  switch (dtype) {
    case 'F32': {
      if (bytes.byteOffset % 4 === 0)
        return new Float32Array(bytes.buffer, bytes.byteOffset, n).slice();
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getFloat32(i * 4, true);
      return out;
    }
    case 'F64': {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getFloat64(i * 8, true);
      return out;
    }
    case 'F16': {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = f16Table[view.getUint16(i * 2, true)];
      return out;
    }
    case 'BF16': {
      const out = new Float32Array(n);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) bits[i] = view.getUint16(i * 2, true) << 16;
      return out;
    }
    case 'I64': {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const v = view.getBigInt64(i * 8, true);
        if (v > 2147483647n || v < -2147483648n) {
          throw new SafetensorsFormatError(
            `${where}: int64 value ${v} at index ${i} does not fit in int32`,
            where,
          );
        }
        out[i] = Number(v);
      }
      return out;
    }
    case 'I32':
      return new Int32Array(bytes.slice().buffer);
    case 'I16': {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getInt16(i * 2, true);
      return out;
    }
    case 'I8': {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getInt8(i);
      return out;
    }
    case 'U8':
    case 'BOOL':
      return bytes.slice();
  }
}

/** Encodes tensors as a safetensors file (float32 → F32, int32 → I32 unless `int64` is set, uint8 → U8). */
export function encodeSafetensors(
  tensors: { name: string; shape: number[]; data: TypedArray; dtype?: SafetensorsDtype }[],
  metadata: Record<string, string> = { format: 'pt' },
): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  const parts: Uint8Array[] = [];
  let offset = 0;
  for (const t of tensors) {
    const dtype: SafetensorsDtype =
      t.dtype ??
      (t.data instanceof Float32Array ? 'F32' : t.data instanceof Int32Array ? 'I32' : 'U8');
    let bytes: Uint8Array;
    if (dtype === 'I64') {
      const out = new BigInt64Array(t.data.length);
      for (let i = 0; i < t.data.length; i++) out[i] = BigInt(t.data[i]);
      bytes = new Uint8Array(out.buffer);
    } else if (dtype === 'F32' || dtype === 'I32' || dtype === 'U8' || dtype === 'BOOL') {
      bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    } else {
      throw new Error(`encodeSafetensors: writing ${dtype} is not supported (tensor '${t.name}')`);
    }
    header[t.name] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes.byteLength] };
    parts.push(bytes);
    offset += bytes.byteLength;
  }
  const json = JSON.stringify(header);
  const jsonLength = new TextEncoder().encode(json).length;
  const headerBytes = new TextEncoder().encode(json + ' '.repeat((8 - (jsonLength % 8)) % 8));
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let pos = 8 + headerBytes.length;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.byteLength;
  }
  return out;
}
