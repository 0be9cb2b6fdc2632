// Loading one tower's LayersModel shard by shard: no buffer ever holds all of a tower's weights, only one
// shard (plus the one weight being assembled) at a time.
import * as tf from '@tensorflow/tfjs';
import '../layers/index.js';
import { assertWeightsFitBinding } from '../model/binding_check.js';
import { ArtifactFormatError } from '../util/errors.js';
import { isSafeRelativePath } from './manifest.js';
import { loadGroupMapped, type WeightStorage } from './mapped_group.js';
import { checkTopologyGraph } from './topology.js';
import type { ArtifactSource } from './source.js';
import { readJson } from './source.js';

export interface ModelJson {
  format?: string;
  generatedBy?: string;
  convertedBy?: string | null;
  modelTopology: tf.io.ModelJSON['modelTopology'];
  weightsManifest?: tf.io.WeightsManifestConfig;
  userDefinedMetadata?: Record<string, unknown>;
}

const VALUE_BYTES: Record<string, number> = {
  float32: 4,
  int32: 4,
  bool: 1,
  uint8: 1,
  uint16: 2,
  float16: 2,
};

const has = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);

/** Bytes a manifest entry occupies in the shards. */
export function entryBytes(e: tf.io.WeightsManifestEntry, where: string): number {
  const d = e.quantization ? e.quantization.dtype : e.dtype;
  const size = has(VALUE_BYTES, d) ? VALUE_BYTES[d] : undefined;
  if (size === undefined) {
    throw new ArtifactFormatError(
      `${where}: weight '${e.name}' has unsupported dtype ${String(d)}`,
      where,
      `weightsManifest.${e.name}.dtype`,
    );
  }
  return size * e.shape.reduce((a, b) => a * b, 1);
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** Largest weight (elements) accepted in a manifest: TF.js tensors are indexed by int32. */
const MAX_ELEMENTS = 2 ** 31 - 1;

function checkEntry(e: unknown, where: string): void {
  const fail = (message: string, field: string) =>
    new ArtifactFormatError(`${where}: ${message}`, where, field);
  if (!isRecord(e) || typeof e.name !== 'string' || !e.name) {
    throw fail('a weightsManifest entry has no name', 'weightsManifest.weights');
  }
  const field = `weightsManifest.${e.name}`;
  const shape = e.shape;
  if (
    !Array.isArray(shape) ||
    shape.length > 8 ||
    !shape.every((d) => Number.isSafeInteger(d) && d >= 0) ||
    shape.reduce((a: number, b: number) => a * b, 1) > MAX_ELEMENTS
  ) {
    throw fail(
      `weight '${e.name}': shape ${JSON.stringify(shape)} is not a valid shape`,
      `${field}.shape`,
    );
  }
  if (e.dtype !== 'float32' && e.dtype !== 'int32' && e.dtype !== 'bool') {
    throw fail(
      `weight '${e.name}' has unsupported dtype ${JSON.stringify(e.dtype)}`,
      `${field}.dtype`,
    );
  }
  const q = e.quantization;
  if (q === undefined) return;
  if (!isRecord(q) || (q.dtype !== 'uint8' && q.dtype !== 'float16' && q.dtype !== 'uint16')) {
    throw fail(
      `weight '${e.name}': quantization ${JSON.stringify(q)} is not uint8, uint16 or float16`,
      `${field}.quantization`,
    );
  }
  if (q.dtype !== 'float16' && !(Number.isFinite(q.min) && Number.isFinite(q.scale))) {
    throw fail(
      `weight '${e.name}': ${q.dtype} quantization needs finite min and scale`,
      `${field}.quantization`,
    );
  }
}

/** Validates a parsed model.json (every manifest group and entry); errors are {@link ArtifactFormatError}s. */
export function parseModelJson(json: unknown, where: string): ModelJson {
  const fail = (message: string, field?: string) =>
    new ArtifactFormatError(`${where}: ${message}`, where, field);
  if (!isRecord(json)) throw fail('not a JSON object');
  const m = json as unknown as ModelJson;
  if (!isRecord(json.modelTopology)) {
    throw fail('no modelTopology (not a TF.js LayersModel)', 'modelTopology');
  }
  if (json.format !== undefined && json.format !== 'layers-model') {
    throw fail(`format is ${JSON.stringify(json.format)}, expected layers-model`, 'format');
  }
  if (json.userDefinedMetadata !== undefined && !isRecord(json.userDefinedMetadata)) {
    throw fail('userDefinedMetadata is not an object', 'userDefinedMetadata');
  }
  if (!Array.isArray(json.weightsManifest)) throw fail('no weightsManifest', 'weightsManifest');
  for (const g of json.weightsManifest as unknown[]) {
    if (!isRecord(g) || !Array.isArray(g.paths) || !Array.isArray(g.weights)) {
      throw fail('a weightsManifest group lacks paths or weights', 'weightsManifest');
    }
    if (!g.paths.every(isSafeRelativePath)) {
      throw fail(
        `weightsManifest paths ${JSON.stringify(g.paths).slice(0, 200)} are not relative file names`,
        'weightsManifest.paths',
      );
    }
    for (const e of g.weights) checkEntry(e, where);
  }
  return m;
}

/**
 * Checks that a weights manifest matches a model's weights one to one (same names and shapes); throws naming
 * the model.json and the weight otherwise.
 */
export function checkManifestAgainstModel(
  manifest: tf.io.WeightsManifestConfig,
  model: tf.LayersModel,
  where: string,
): Map<string, tf.LayerVariable> {
  const variables = new Map(model.weights.map((w) => [w.originalName, w]));
  const shapes = new Map([...variables].map(([n, v]) => [n, v.shape as number[]]));
  checkManifestAgainst(manifest, shapes, where, 'the model topology');
  return variables;
}

/**
 * Checks that a weights manifest lists exactly the weights `expected` names, with those shapes; `what` says
 * where the expectation comes from in messages.
 */
export function checkManifestAgainst(
  manifest: tf.io.WeightsManifestConfig,
  expected: ReadonlyMap<string, readonly number[]>,
  where: string,
  what: string,
): true {
  const fail = (message: string, field: string) =>
    new ArtifactFormatError(`${where}: ${message}`, where, field);
  const seen = new Set<string>();
  for (const g of manifest) {
    for (const e of g.weights) {
      const shape = expected.get(e.name);
      if (!shape) {
        throw fail(
          `weightsManifest lists weight '${e.name}', which ${what} does not have`,
          `weightsManifest.${e.name}`,
        );
      }
      if (shape.join(',') !== e.shape.join(',')) {
        throw fail(
          `weight '${e.name}' has shape [${e.shape.join(', ')}] in weightsManifest, ` +
            `${what} needs [${shape.join(', ')}]`,
          `weightsManifest.${e.name}.shape`,
        );
      }
      if (seen.has(e.name)) {
        throw fail(`weight '${e.name}' is listed twice`, `weightsManifest.${e.name}`);
      }
      seen.add(e.name);
    }
  }
  const missing = [...expected.keys()].filter((n) => !seen.has(n));
  if (missing.length) {
    throw fail(
      `weightsManifest lacks ${missing.length} weight(s) of ${what}: ` +
        `${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}`,
      `weightsManifest.${missing[0]}`,
    );
  }
  return true;
}

/** Expected byte length of each shard when shards are uniform (`shardBytes` each, the last one shorter). */
export function expectedShardSizes(total: number, count: number, shardBytes?: number): number[] {
  if (shardBytes === undefined) return [];
  return Array.from({ length: count }, (_, i) =>
    Math.max(0, Math.min(shardBytes, total - i * shardBytes)),
  );
}

export interface TowerLoadOptions {
  /** Bytes of one shard file as the converter wrote them (from siglip.json), for exact size checks. */
  shardBytes?: number;
  /** Shard files fetched ahead (default 4). */
  concurrency?: number;
  /** Called after each shard with the bytes of this tower loaded so far and in all. */
  onBytes?: (loaded: number, total: number) => void;
  /**
   * Weights (names and shapes) the tower must have, e.g. from the configuration in siglip.json: checked against
   * the weights manifest before the model is built, so a manifest cannot make the loader allocate other sizes.
   */
  expectedWeights?: ReadonlyMap<string, readonly number[]>;
  /** Shard bytes the tower must have (siglip.json's `weightBytes`), checked before the model is built. */
  expectedBytes?: number;
  /**
   * Map float32 weights from the files instead of reading them (when the source has `files`; only for backends
   * that keep the arrays they are given, see `keepsWrittenArrays`).
   */
  mapWeights?: boolean;
  /** Adds the bytes mapped and copied here. */
  storage?: WeightStorage;
}

/**
 * Loads a converted tower: builds the model from its topology, checks the weights manifest against it, then
 * reads the shards in order and assigns each weight as soon as its bytes are in (TF.js's own decoder
 * dequantizes float16/uint8).
 */
export async function loadTowerModel(
  source: ArtifactSource,
  modelJsonPath: string,
  opts: TowerLoadOptions = {},
): Promise<{ model: tf.LayersModel; json: ModelJson }> {
  const where = source.locate(modelJsonPath);
  const json = parseModelJson(await readJson(source, modelJsonPath), where);
  const dir = modelJsonPath.includes('/')
    ? modelJsonPath.slice(0, modelJsonPath.lastIndexOf('/') + 1)
    : '';
  const manifest = json.weightsManifest!;
  if (opts.expectedWeights) {
    checkManifestAgainst(manifest, opts.expectedWeights, where, 'the configuration');
  }
  const total = manifest.reduce(
    (s, g) => s + g.weights.reduce((t, e) => t + entryBytes(e, where), 0),
    0,
  );
  if (opts.expectedBytes !== undefined && total !== opts.expectedBytes) {
    throw new ArtifactFormatError(
      `${where}: the weightsManifest describes ${total} bytes of weights, siglip.json records ${opts.expectedBytes}`,
      where,
      'weightsManifest',
    );
  }
  checkTopologyGraph(json.modelTopology, where);
  let model: tf.LayersModel;
  try {
    model = await tf.models.modelFromJSON({ modelTopology: json.modelTopology });
  } catch (e) {
    throw new ArtifactFormatError(
      `${where}: modelTopology cannot be built (${(e as Error).message})`,
      where,
      'modelTopology',
      { cause: e },
    );
  }
  try {
    const variables = checkManifestAgainstModel(manifest, model, where);
    assertWeightsFitBinding([model], where);
    let loaded = 0;
    const onBytes = (n: number) => {
      loaded += n;
      opts.onBytes?.(loaded, total);
    };
    for (const group of manifest) {
      if (opts.mapWeights && source.files) {
        await loadGroupMapped(source, source.files, dir, group, variables, where, opts, onBytes);
      } else {
        await loadGroup(source, dir, group, variables, where, opts, (n) => {
          onBytes(n);
          if (opts.storage) opts.storage.copiedBytes += n;
        });
      }
    }
    if (json.userDefinedMetadata) model.setUserDefinedMetadata(json.userDefinedMetadata);
    return { model, json };
  } catch (e) {
    model.dispose();
    throw e;
  }
}

async function loadGroup(
  source: ArtifactSource,
  dir: string,
  group: tf.io.WeightsManifestConfig[number],
  variables: Map<string, tf.LayerVariable>,
  where: string,
  opts: TowerLoadOptions,
  onShard: (bytes: number) => void,
): Promise<void> {
  const entries = group.weights.map((e) => ({ spec: e, bytes: entryBytes(e, where) }));
  const total = entries.reduce((s, e) => s + e.bytes, 0);
  const expected = expectedShardSizes(total, group.paths.length, opts.shardBytes);
  const concurrency = Math.max(1, opts.concurrency ?? 4);
  const pending: Promise<ArrayBuffer>[] = [];
  let next = 0;
  const fetchNext = () => {
    if (next < group.paths.length) {
      const p = source.bytes(dir + group.paths[next++]);
      p.catch(() => undefined); // reported when awaited, in order
      pending.push(p);
    }
  };
  for (let i = 0; i < concurrency; i++) fetchNext();

  let entryIndex = 0;
  let current: Uint8Array | undefined; // bytes of the weight being assembled
  let filled = 0;
  let offset = 0; // bytes of the group consumed
  const finish = () => {
    const { spec } = entries[entryIndex];
    let decoded: tf.NamedTensorMap | undefined;
    try {
      decoded = tf.io.decodeWeights(current!.buffer as ArrayBuffer, [spec]);
      variables.get(spec.name)!.write(decoded[spec.name]);
    } catch (e) {
      throw new ArtifactFormatError(
        `${where}: weight '${spec.name}' cannot be decoded (${(e as Error).message})`,
        where,
        `weightsManifest.${spec.name}`,
        { cause: e },
      );
    } finally {
      if (decoded) tf.dispose(decoded);
    }
    current = undefined;
    filled = 0;
    entryIndex++;
  };
  const skipEmpty = () => {
    while (entryIndex < entries.length && entries[entryIndex].bytes === 0) {
      current = new Uint8Array(0);
      finish();
    }
  };
  skipEmpty();
  for (let s = 0; s < group.paths.length; s++) {
    const path = dir + group.paths[s];
    const buffer = await pending.shift()!;
    fetchNext();
    const bytes = new Uint8Array(buffer);
    if (expected.length && bytes.byteLength !== expected[s]) {
      throw new ArtifactFormatError(
        `${source.locate(path)}: shard is ${bytes.byteLength} bytes, expected ${expected[s]} (truncated or corrupt file)`,
        source.locate(path),
      );
    }
    if (offset + bytes.byteLength > total) {
      throw new ArtifactFormatError(
        `${source.locate(path)}: the shards hold more bytes than the ${total} the weightsManifest of ${where} describes`,
        source.locate(path),
      );
    }
    let pos = 0;
    while (pos < bytes.byteLength && entryIndex < entries.length) {
      const need = entries[entryIndex].bytes;
      const n = Math.min(need - filled, bytes.byteLength - pos);
      if (!current) current = new Uint8Array(need);
      current.set(bytes.subarray(pos, pos + n), filled);
      filled += n;
      pos += n;
      if (filled === need) {
        finish();
        skipEmpty();
      }
    }
    offset += bytes.byteLength;
    onShard(bytes.byteLength);
  }
  if (offset !== total) {
    const last = group.paths[group.paths.length - 1];
    throw new ArtifactFormatError(
      `${where}: the shard files hold ${offset} bytes, the weightsManifest needs ${total} ` +
        `(a shard such as ${last === undefined ? '(none listed)' : source.locate(dir + last)} is truncated ` +
        `or missing data; weight '${entries[Math.min(entryIndex, entries.length - 1)]?.spec.name}' is incomplete)`,
      where,
      'weightsManifest',
    );
  }
}
