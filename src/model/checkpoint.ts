import { existsSync, promises as fsp } from 'node:fs';
import { join } from 'node:path';
import {
  type LoadedTensor,
  SafetensorsFile,
  SafetensorsFormatError,
  type TensorInfo,
} from '../io/safetensors.js';
import { FileAccessError } from '../util/errors.js';
import type { WeightEntry } from './weight_map.js';

/**
 * The tensors of a Hugging Face checkpoint folder: `model.safetensors`, or the shards listed by
 * `model.safetensors.index.json`. Tensors are read one at a time.
 */
export class CheckpointReader {
  private constructor(
    readonly dir: string,
    private readonly files: SafetensorsFile[],
    private readonly byName: Map<string, SafetensorsFile>,
  ) {}

  static async open(dir: string): Promise<CheckpointReader> {
    const single = join(dir, 'model.safetensors');
    const index = join(dir, 'model.safetensors.index.json');
    if (existsSync(index)) return CheckpointReader.openSharded(dir, index);
    if (existsSync(single)) {
      const file = await SafetensorsFile.open(single);
      return new CheckpointReader(dir, [file], new Map(file.names.map((n) => [n, file])));
    }
    throw new FileAccessError(
      `${dir}: no model.safetensors or model.safetensors.index.json (only safetensors checkpoints are read; ` +
        'convert a pytorch_model.bin with transformers first)',
      single,
    );
  }

  private static async openSharded(dir: string, index: string): Promise<CheckpointReader> {
    const fail = (message: string, field?: string, cause?: unknown) =>
      new SafetensorsFormatError(`${index}: ${message}`, index, field, { cause });
    let parsed: unknown;
    try {
      parsed = JSON.parse(await fsp.readFile(index, 'utf8'));
    } catch (e) {
      throw fail(`not valid JSON (${(e as Error).message})`, undefined, e);
    }
    const weightMap =
      parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)
        ? (parsed as { weight_map?: unknown }).weight_map
        : undefined;
    if (weightMap === null || typeof weightMap !== 'object' || Array.isArray(weightMap)) {
      throw fail('no weight_map object', 'weight_map');
    }
    const entries = Object.entries(weightMap as Record<string, unknown>);
    for (const [name, shard] of entries) {
      if (
        typeof shard !== 'string' ||
        !shard ||
        shard.includes('/') ||
        shard.includes('\\') ||
        shard.startsWith('.')
      ) {
        throw fail(
          `weight_map['${name}']: shard name ${JSON.stringify(shard)} is not a plain file name`,
          `weight_map.${name}`,
        );
      }
    }
    const shardNames = [...new Set(entries.map(([, s]) => s as string))];
    const files: SafetensorsFile[] = [];
    const byShard = new Map<string, SafetensorsFile>();
    try {
      for (const shard of shardNames) {
        const file = await SafetensorsFile.open(join(dir, shard));
        files.push(file);
        byShard.set(shard, file);
      }
    } catch (e) {
      await Promise.all(files.map((f) => f.close()));
      throw e;
    }
    const byName = new Map<string, SafetensorsFile>();
    for (const [name, shard] of entries) {
      const file = byShard.get(shard as string) as SafetensorsFile;
      if (!file.tensors.has(name)) {
        await Promise.all(files.map((f) => f.close()));
        throw fail(
          `lists '${name}' in ${shard as string}, but that shard does not hold it`,
          `weight_map.${name}`,
        );
      }
      byName.set(name, file);
    }
    return new CheckpointReader(dir, files, byName);
  }

  get names(): string[] {
    return [...this.byName.keys()];
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  info(name: string): TensorInfo {
    const file = this.byName.get(name);
    if (!file) throw new Error(`${this.dir}: the checkpoint has no tensor '${name}'`);
    return file.info(name);
  }

  /** The file holding a tensor (for messages). */
  fileOf(name: string): string {
    return this.byName.get(name)?.path ?? this.dir;
  }

  async read(name: string): Promise<LoadedTensor> {
    const file = this.byName.get(name);
    if (!file) throw new Error(`${this.dir}: the checkpoint has no tensor '${name}'`);
    return file.read(name);
  }

  /** Elements `[first, first + count)` of a tensor (row-major), for streaming a large tensor in pieces. */
  async readElements(name: string, first: number, count: number): Promise<LoadedTensor['data']> {
    const file = this.byName.get(name);
    if (!file) throw new Error(`${this.dir}: the checkpoint has no tensor '${name}'`);
    return file.readElements(name, first, count);
  }

  async close(): Promise<void> {
    await Promise.all(this.files.map((f) => f.close()));
  }
}

const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16', 'F64']);

/**
 * Checks that a checkpoint holds every tensor in `wanted`, with the expected shape and a floating dtype; the error
 * names the folder, file and tensor at fault.
 */
export function checkCheckpointTensors(
  reader: CheckpointReader,
  wanted: readonly WeightEntry[],
): void {
  const missing = wanted.filter((e) => !reader.has(e.hfName)).map((e) => e.hfName);
  if (missing.length) {
    throw new SafetensorsFormatError(
      `${reader.dir}: the checkpoint lacks ${missing.length} tensor(s) the configuration needs: ` +
        `${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ', …' : ''}`,
      reader.dir,
      missing[0],
    );
  }
  for (const e of wanted) {
    const info = reader.info(e.hfName);
    if (info.shape.join(',') !== e.hfShape.join(',')) {
      throw new SafetensorsFormatError(
        `${reader.fileOf(e.hfName)}: tensor '${e.hfName}' has shape [${info.shape.join(', ')}], ` +
          `the configuration needs [${e.hfShape.join(', ')}]`,
        reader.fileOf(e.hfName),
        `${e.hfName}.shape`,
      );
    }
    if (!FLOAT_DTYPES.has(info.dtype)) {
      throw new SafetensorsFormatError(
        `${reader.fileOf(e.hfName)}: tensor '${e.hfName}' has dtype ${info.dtype}; weights must be F32, F16 or BF16`,
        reader.fileOf(e.hfName),
        `${e.hfName}.dtype`,
      );
    }
  }
}
