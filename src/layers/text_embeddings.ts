import * as tf from '@tensorflow/tfjs';
import { bindingLimit } from '../backends/binding.js';
import { readEnv } from '../backends/env.js';
import { DEFAULT_SHARD_BYTES, shardTable, shardedGather } from '../backends/sharded_gather.js';
import { hostValues } from '../util/host_values.js';
import './kernels/segment_sum_cpu.js'; // gather's gradient on cpu in one pass
import { lookupWithTableGradient } from './kernels/table_lookup.js';
import { SiglipLayer, type Shape, type SiglipLayerArgs, firstShape } from './base.js';

/**
 * How the token table is looked up.
 * - `auto` (default): a plain `tf.gather`, except on webgpu when the table is larger than the storage-buffer
 *   binding limit: then `sharded`.
 * - `device`: always a plain `tf.gather` (wrong on webgpu over the binding limit: it reads zeros).
 * - `sharded`: row shards of at most the binding limit (128 MiB off webgpu) built on the device from the table's
 *   CPU-side data, gathered with `shardedGather`.
 * - `cpu`: rows are copied out of the table's CPU-side data in JavaScript and uploaded as one `[B, L, D]` tensor.
 * Every mode is differentiable with respect to the table (a scatter-add of the incoming rows, the same gradient as
 * `tf.gather`'s; see `lookupWithTableGradient`). On webgpu a table gradient over the binding limit cannot exist
 * as one tensor, so recording one throws, naming the table (freeze the text embeddings there).
 */
export type TokenTableMode = 'auto' | 'device' | 'sharded' | 'cpu';

export const TOKEN_TABLE_MODES: readonly TokenTableMode[] = ['auto', 'device', 'sharded', 'cpu'];

/** Environment variable (Node) that sets the default TokenTableMode. */
export const TOKEN_TABLE_ENV = 'SIGLIP2_TOKEN_TABLE';

let defaultMode: TokenTableMode | undefined;

/**
 * Sets how every text embedding layer without its own `tokenTable` option looks up its token table (default
 * `auto`, or $SIGLIP2_TOKEN_TABLE); `undefined` restores the default. Applies to models loaded from JSON too.
 */
export function setTokenTableMode(mode: TokenTableMode | undefined): void {
  if (mode !== undefined && !TOKEN_TABLE_MODES.includes(mode)) {
    throw new Error(
      `setTokenTableMode: expected one of ${TOKEN_TABLE_MODES.join(', ')}, got '${String(mode)}'`,
    );
  }
  defaultMode = mode;
}

/** The mode layers use when they have no `tokenTable` option of their own. */
export function tokenTableMode(): TokenTableMode {
  if (defaultMode !== undefined) return defaultMode;
  const env = readEnv(TOKEN_TABLE_ENV);
  if (env === undefined || env === '') return 'auto';
  if (!(TOKEN_TABLE_MODES as readonly string[]).includes(env)) {
    throw new Error(
      `${TOKEN_TABLE_ENV} must be one of ${TOKEN_TABLE_MODES.join(', ')}, got '${env}'`,
    );
  }
  return env as TokenTableMode;
}

/** The weight name of the token table inside a text tower (also what the binding check lets through). */
export const TOKEN_TABLE_WEIGHT = 'token_embedding/embeddings';

export interface TextEmbeddingsArgs extends SiglipLayerArgs {
  hiddenSize: number;
  vocabSize: number;
  maxPositionEmbeddings: number;
  /** Token table lookup (not saved with the model): default `setTokenTableMode()` / `auto`. */
  tokenTable?: TokenTableMode;
}

/** Token-table shards cached for one version of the table on one backend. */
interface ShardCache {
  dataId: object;
  backend: string;
  shardBytes: number;
  shards: tf.Tensor2D[];
}

/**
 * `SiglipTextEmbeddings`: token embedding plus learned position embedding (positions 0..L-1).
 * Input: token ids `[B, L]` (int32), L <= maxPositionEmbeddings. Output `[B, L, D]`.
 *
 * The token table stays one weight (`token_embedding/embeddings`) for saving and loading. On webgpu a table over
 * the storage-buffer binding limit (SigLIP 2's 256000 x 1152 table is 1.18 GB) is never bound: its values stay
 * on the CPU side of the tensor (weights are written from CPU data and no kernel reads this variable), and the
 * lookup uses row shards built from that data (`sharded`) or copies rows in JavaScript (`cpu`).
 */
export class SiglipTextEmbeddings extends SiglipLayer {
  static readonly className = 'SiglipTextEmbeddings';
  readonly hiddenSize: number;
  readonly vocabSize: number;
  readonly maxPositionEmbeddings: number;
  readonly tokenTable?: TokenTableMode;
  tokenEmbedding!: tf.LayerVariable;
  positionEmbedding!: tf.LayerVariable;
  private shardCache?: ShardCache;

  constructor(args: TextEmbeddingsArgs) {
    super(args);
    this.hiddenSize = args.hiddenSize;
    this.vocabSize = args.vocabSize;
    this.maxPositionEmbeddings = args.maxPositionEmbeddings;
    if (args.tokenTable !== undefined && !TOKEN_TABLE_MODES.includes(args.tokenTable)) {
      throw new Error(
        `${this.name}: tokenTable must be one of ${TOKEN_TABLE_MODES.join(', ')}, got '${String(args.tokenTable)}'`,
      );
    }
    this.tokenTable = args.tokenTable;
  }

  override build(_inputShape: Shape | Shape[]): void {
    this.tokenEmbedding = this.addParam(
      TOKEN_TABLE_WEIGHT,
      [this.vocabSize, this.hiddenSize],
      'embedding',
      { shardable: true },
    );
    this.positionEmbedding = this.addParam(
      'position_embedding/embeddings',
      [this.maxPositionEmbeddings, this.hiddenSize],
      'embedding',
    );
    this.built = true;
  }

  /** The lookup the next call will use (`auto` resolved for the active backend and binding limit). */
  resolvedTokenTableMode(): Exclude<TokenTableMode, 'auto'> {
    const mode = this.tokenTable ?? tokenTableMode();
    if (mode !== 'auto') return mode;
    const limit = bindingLimit();
    return limit !== undefined && this.vocabSize * this.hiddenSize * 4 > limit
      ? 'sharded'
      : 'device';
  }

  /** The table's values as a Float32Array (read from the CPU side; never binds the table on webgpu). */
  private tableData(): Float32Array {
    return this.tokenEmbedding.read().dataSync() as Float32Array;
  }

  private shards(): tf.Tensor2D[] {
    const variable = this.tokenEmbedding.read();
    const shardBytes = bindingLimit() ?? DEFAULT_SHARD_BYTES;
    const backend = tf.getBackend();
    const c = this.shardCache;
    if (
      c &&
      c.dataId === variable.dataId &&
      c.backend === backend &&
      c.shardBytes === shardBytes &&
      c.shards.every((s) => !s.isDisposed)
    ) {
      return c.shards;
    }
    this.disposeShards();
    // Built outside any tidy of the caller: the cache outlives the call.
    const shards = shardTable(
      this.tableData(),
      [this.vocabSize, this.hiddenSize],
      shardBytes,
      `${this.name}/${TOKEN_TABLE_WEIGHT}`,
    );
    shards.forEach((s) => tf.keep(s));
    this.shardCache = { dataId: variable.dataId, backend, shardBytes, shards };
    return shards;
  }

  private disposeShards(): void {
    if (this.shardCache) tf.dispose(this.shardCache.shards);
    this.shardCache = undefined;
  }

  private cpuLookup(ids: tf.Tensor): tf.Tensor {
    const table = this.tableData();
    const idData = hostValues(ids, `${this.name}: input_ids`);
    const d = this.hiddenSize;
    const out = new Float32Array(idData.length * d);
    for (let i = 0; i < idData.length; i++) {
      const id = idData[i];
      if (id >= 0 && id < this.vocabSize) out.set(table.subarray(id * d, (id + 1) * d), i * d);
    }
    return tf.tensor(out, [...ids.shape, d], 'float32');
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const ids = Array.isArray(inputs) ? inputs[0] : inputs;
    const length = ids.shape[1];
    if (ids.rank !== 2 || length == null || length > this.maxPositionEmbeddings) {
      throw new Error(
        `${this.name}: input_ids must be [batch, length] with length <= ${this.maxPositionEmbeddings}, ` +
          `got [${ids.shape.join(', ')}]`,
      );
    }
    const mode = this.resolvedTokenTableMode();
    if (mode === 'device') this.disposeShards();
    const shards = mode === 'sharded' ? this.shards() : undefined;
    return tf.tidy(() => {
      const table = this.tokenEmbedding.read() as tf.Tensor2D;
      const intIds = ids.toInt();
      let tokens: tf.Tensor;
      if (mode === 'device') tokens = tf.gather(table, intIds);
      else {
        // Computed from shards or CPU data, but differentiable with respect to the table like tf.gather.
        const rows = shards ? shards.map((s) => s.shape[0]) : [this.vocabSize];
        tokens = lookupWithTableGradient(
          table,
          intIds,
          () => (shards ? shardedGather(shards, intIds) : this.cpuLookup(intIds)),
          rows,
          `${this.name}/${TOKEN_TABLE_WEIGHT}`,
        );
      }
      const positions = this.positionEmbedding.read().slice([0, 0], [length, this.hiddenSize]);
      return tokens.add(positions);
    });
  }

  override dispose(): ReturnType<tf.layers.Layer['dispose']> {
    this.disposeShards();
    return super.dispose();
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const shape = firstShape(inputShape);
    return [shape[0], shape[1], this.hiddenSize];
  }

  override getConfig(): tf.serialization.ConfigDict {
    return this.withBaseConfig({
      hiddenSize: this.hiddenSize,
      vocabSize: this.vocabSize,
      maxPositionEmbeddings: this.maxPositionEmbeddings,
    });
  }
}
tf.serialization.registerClass(SiglipTextEmbeddings);
