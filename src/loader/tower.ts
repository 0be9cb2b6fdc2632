// Loading one tower's LayersModel shard by shard: no buffer ever holds all of a tower's weights, only one
// shard (plus the one weight being assembled) at a time.
import * as tf from '@tensorflow/tfjs';
import '../layers/index.js';
import { assertWeightsFitBinding } from '../model/binding_check.js';
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

/** Bytes a manifest entry occupies in the shards. */
export function entryBytes(e: tf.io.WeightsManifestEntry, where: string): number {
  const d = e.quantization ? e.quantization.dtype : e.dtype;
  const size = VALUE_BYTES[d];
  if (size === undefined)
    throw new Error(`${where}: weight '${e.name}' has unsupported dtype ${d}`);
  return size * e.shape.reduce((a, b) => a * b, 1);
}

export function parseModelJson(json: unknown, where: string): ModelJson {
  if (typeof json !== 'object' || json === null) throw new Error(`${where}: not a JSON object`);
  const m = json as ModelJson;
  if (!m.modelTopology) throw new Error(`${where}: no modelTopology (not a TF.js LayersModel)`);
  if (m.format !== undefined && m.format !== 'layers-model') {
    throw new Error(`${where}: format is ${m.format}, expected layers-model`);
  }
  if (!Array.isArray(m.weightsManifest)) throw new Error(`${where}: no weightsManifest`);
  for (const g of m.weightsManifest) {
    if (!Array.isArray(g.paths) || !Array.isArray(g.weights)) {
      throw new Error(`${where}: a weightsManifest group lacks paths or weights`);
    }
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
  const seen = new Set<string>();
  for (const g of manifest) {
    for (const e of g.weights) {
      const v = variables.get(e.name);
      if (!v) {
        throw new Error(
          `${where}: weightsManifest lists weight '${e.name}', which the model topology does not have`,
        );
      }
      if (v.shape.join(',') !== e.shape.join(',')) {
        throw new Error(
          `${where}: weight '${e.name}' has shape [${e.shape.join(', ')}] in weightsManifest, ` +
            `the model topology needs [${v.shape.join(', ')}]`,
        );
      }
      if (seen.has(e.name)) throw new Error(`${where}: weight '${e.name}' is listed twice`);
      seen.add(e.name);
    }
  }
  const missing = [...variables.keys()].filter((n) => !seen.has(n));
  if (missing.length) {
    throw new Error(
      `${where}: weightsManifest lacks ${missing.length} weight(s) of the model topology: ` +
        `${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}`,
    );
  }
  return variables;
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
  const model = await tf.models.modelFromJSON({ modelTopology: json.modelTopology });
  try {
    const manifest = json.weightsManifest!;
    const variables = checkManifestAgainstModel(manifest, model, where);
    assertWeightsFitBinding([model], where);
    const total = manifest.reduce(
      (s, g) => s + g.weights.reduce((t, e) => t + entryBytes(e, where), 0),
      0,
    );
    let loaded = 0;
    for (const group of manifest) {
      await loadGroup(source, dir, group, variables, where, opts, (n) => {
        loaded += n;
        opts.onBytes?.(loaded, total);
      });
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
    const decoded = tf.io.decodeWeights(current!.buffer as ArrayBuffer, [spec]);
    const t = decoded[spec.name];
    variables.get(spec.name)!.write(t);
    t.dispose();
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
      throw new Error(
        `${source.locate(path)}: shard is ${bytes.byteLength} bytes, expected ${expected[s]} (truncated or corrupt file)`,
      );
    }
    if (offset + bytes.byteLength > total) {
      throw new Error(
        `${source.locate(path)}: the shards hold more bytes than the ${total} the weightsManifest of ${where} describes`,
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
    throw new Error(
      `${where}: the shard files hold ${offset} bytes, the weightsManifest needs ${total} ` +
        `(a shard such as ${source.locate(dir + last)} is truncated or missing data; ` +
        `weight '${entries[Math.min(entryIndex, entries.length - 1)].spec.name}' is incomplete)`,
    );
  }
}
