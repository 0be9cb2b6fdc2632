import { promises as fsp } from 'node:fs';
import { FileAccessError } from '../util/errors.js';
import {
  DTYPE_BYTES,
  type SafetensorsDtype,
  type TensorInfo,
  type TypedArray,
  decodeTensorBytes,
  parseHeader,
  SafetensorsFormatError,
} from './safetensors_format.js';

export * from './safetensors_format.js';

/** A tensor read from a safetensors file. Floating dtypes are upcast to float32. */
export interface LoadedTensor {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  data: TypedArray;
}

/**
 * A safetensors file opened for streaming: only the header is read up front, each tensor is read from disk
 * when asked for, so a multi-gigabyte checkpoint never sits in memory at once.
 */
export class SafetensorsFile {
  private constructor(
    readonly path: string,
    private readonly handle: fsp.FileHandle,
    readonly tensors: ReadonlyMap<string, TensorInfo>,
    readonly metadata: Record<string, string>,
    private readonly dataStart: number,
  ) {}

  static async open(path: string): Promise<SafetensorsFile> {
    let handle: fsp.FileHandle;
    try {
      handle = await fsp.open(path, 'r');
    } catch (e) {
      throw new FileAccessError(
        `${path}: cannot open safetensors file (${(e as Error).message})`,
        path,
        { cause: e },
      );
    }
    try {
      const { size } = await handle.stat();
      const prefix = Buffer.alloc(8);
      const { bytesRead } = await handle.read(prefix, 0, 8, 0);
      if (bytesRead < 8) {
        throw new SafetensorsFormatError(
          `${path}: file is ${size} bytes, too short for a safetensors header`,
          path,
          'header length',
        );
      }
      const headerLength = prefix.readBigUInt64LE(0);
      const maxHeader = BigInt(Math.min(size - 8, 100 * 1024 * 1024));
      if (headerLength > maxHeader) {
        throw new SafetensorsFormatError(
          `${path}: header length ${headerLength} does not fit in the file (${size} bytes)` +
            (headerLength > 100n * 1024n * 1024n ? ' and exceeds the 100 MiB limit' : ''),
          path,
          'header length',
        );
      }
      const n = Number(headerLength);
      const headerBytes = Buffer.alloc(n);
      const got = await handle.read(headerBytes, 0, n, 8);
      if (got.bytesRead !== n) {
        throw new SafetensorsFormatError(
          `${path}: file ended inside the ${n}-byte header`,
          path,
          'header',
        );
      }
      const { tensors, metadata } = parseHeader(headerBytes, size - 8 - n, path);
      return new SafetensorsFile(path, handle, tensors, metadata, 8 + n);
    } catch (e) {
      await handle.close();
      throw e;
    }
  }

  /** Names of the tensors, in file order. */
  get names(): string[] {
    return [...this.tensors.keys()];
  }

  info(name: string): TensorInfo {
    const info = this.tensors.get(name);
    if (!info) {
      throw new SafetensorsFormatError(`${this.path}: no tensor named '${name}'`, this.path, name);
    }
    return info;
  }

  /** The raw little-endian bytes of one tensor. */
  async readBytes(name: string): Promise<Uint8Array> {
    const info = this.info(name);
    return this.readByteRange(name, 0, info.end - info.begin);
  }

  /**
   * Bytes `[start, end)` of one tensor's data (offsets relative to the tensor), for streaming a large tensor
   * in pieces.
   */
  async readByteRange(name: string, start: number, end: number): Promise<Uint8Array> {
    const info = this.info(name);
    if (!(start >= 0 && end >= start && end <= info.end - info.begin)) {
      throw new Error(
        `${this.path}: byte range [${start}, ${end}) is outside tensor '${name}' (${info.end - info.begin} bytes)`,
      );
    }
    const length = end - start;
    const bytes = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const chunk = Math.min(length - done, 1 << 30);
      const { bytesRead } = await this.handle.read(
        bytes,
        done,
        chunk,
        this.dataStart + info.begin + start + done,
      );
      if (bytesRead === 0) {
        throw new SafetensorsFormatError(
          `${this.path}: tensor '${name}' is truncated (file ended early)`,
          this.path,
          name,
        );
      }
      done += bytesRead;
    }
    return bytes;
  }

  /** Reads one tensor, converting F16/BF16/F64 to float32 and I64 to int32 (range-checked). */
  async read(name: string): Promise<LoadedTensor> {
    const info = this.info(name);
    const bytes = await this.readBytes(name);
    return {
      name,
      dtype: info.dtype,
      shape: info.shape,
      data: decodeTensorBytes(bytes, info.dtype, `${this.path}: tensor '${name}'`),
    };
  }

  /** Reads elements `[first, first + count)` of a tensor (row-major), converted as `read` does. */
  async readElements(name: string, first: number, count: number): Promise<LoadedTensor['data']> {
    const info = this.info(name);
    const size = DTYPE_BYTES[info.dtype];
    const bytes = await this.readByteRange(name, first * size, (first + count) * size);
    return decodeTensorBytes(bytes, info.dtype, `${this.path}: tensor '${name}'`);
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

/** Reads every tensor of a (small) safetensors file, e.g. a fixture's inputs or outputs. */
export async function readSafetensors(path: string): Promise<Map<string, LoadedTensor>> {
  const file = await SafetensorsFile.open(path);
  try {
    const out = new Map<string, LoadedTensor>();
    for (const name of file.names) out.set(name, await file.read(name));
    return out;
  } finally {
    await file.close();
  }
}
