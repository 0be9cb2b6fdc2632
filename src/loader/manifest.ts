// The converted-model format: what `siglip2 convert` writes and `loadSiglip` reads. Browser-safe (no Node imports).
import { ArtifactFormatError } from '../util/errors.js';

/** How weights are stored in the shards (dequantized to float32 at load time by TF.js). */
export type StorageDtype = 'float32' | 'float16' | 'uint8';

export const STORAGE_DTYPES: readonly StorageDtype[] = ['float32', 'float16', 'uint8'];

/** One LayersModel artifact of a converted model. */
export type ArtifactTower = 'vision' | 'text' | 'scores';

export const MANIFEST_FILE = 'siglip.json';
export const MANIFEST_FORMAT = 'siglip2-tfjs';
export const MANIFEST_FORMAT_VERSION = 1;

export interface TowerArtifactInfo {
  /** Relative path of the tower's `model.json`, e.g. `vision/model.json`. */
  modelJson: string;
  /** Bytes of all its shard files. */
  weightBytes: number;
  /** Number of shard files. */
  shards: number;
  /** Number of float parameters. */
  parameters: number;
}

/** Size and SHA-256 (lowercase hex) of one file of a converted model. */
export interface FileDigest {
  size: number;
  sha256: string;
}

/**
 * `siglip.json`, at the root of a converted model. Each tower is a standalone TF.js LayersModel in its own
 * folder (`vision/`, `text/`, `scores/`: the scoring head with `logit_scale` and `logit_bias`), so a page that
 * only embeds images downloads only `vision/`.
 */
export interface SiglipArtifactsManifest {
  format: typeof MANIFEST_FORMAT;
  formatVersion: number;
  converter: { name: string; version: string };
  source: {
    /** Hugging Face repo id, when converted from the hub. */
    repo?: string;
    /** Commit of the repo, when known. */
    revision?: string;
    /** Local folder it was converted from. */
    path?: string;
  };
  dtype: StorageDtype;
  /** Maximum bytes per shard file. */
  shardBytes: number;
  towers: Partial<Record<ArtifactTower, TowerArtifactInfo>>;
  /** The Hugging Face `config.json`, verbatim. */
  config: unknown;
  /** Processor and tokenizer files copied beside the manifest (relative paths). */
  files: string[];
  /**
   * Size and SHA-256 of every file the converter wrote (model.json, shards, copied files), by relative path.
   * Absent in manifests written before digests were recorded (those load unverified, with a warning).
   */
  digests?: Record<string, FileDigest>;
  createdAt: string;
}

/** What each tower's model.json carries in `userDefinedMetadata`, so a tower is self-describing on its own. */
export interface TowerMetadata {
  siglip2: {
    tower: ArtifactTower;
    dtype: StorageDtype;
    /** The Hugging Face `config.json`, verbatim. */
    config: unknown;
  };
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** A relative path inside a converted model: no `..`, no absolute path, no backslash, no empty segment. */
export function isSafeRelativePath(p: unknown): p is string {
  return (
    typeof p === 'string' &&
    p.length > 0 &&
    p.length < 1024 &&
    !p.startsWith('/') &&
    !p.includes('\\') &&
    !/^[a-z][a-z0-9+.-]*:/i.test(p) &&
    p.split('/').every((seg) => seg !== '' && seg !== '.' && seg !== '..')
  );
}

function isSize(x: unknown): x is number {
  return Number.isSafeInteger(x) && (x as number) >= 0;
}

/** Validates a parsed `siglip.json`; `where` names it in messages. Errors are {@link ArtifactFormatError}s. */
export function parseManifest(json: unknown, where: string): SiglipArtifactsManifest {
  const fail = (message: string, field?: string) =>
    new ArtifactFormatError(`${where}: ${message}`, where, field);
  if (!isRecord(json)) throw fail('not a JSON object');
  if (json.format !== MANIFEST_FORMAT) {
    throw fail(
      `format is ${JSON.stringify(json.format)}, expected "${MANIFEST_FORMAT}" (not a converted SigLIP model)`,
      'format',
    );
  }
  if (
    typeof json.formatVersion !== 'number' ||
    !Number.isInteger(json.formatVersion) ||
    json.formatVersion < 1
  ) {
    throw fail(
      `formatVersion ${JSON.stringify(json.formatVersion)} is not a version number`,
      'formatVersion',
    );
  }
  if (json.formatVersion > MANIFEST_FORMAT_VERSION) {
    throw fail(
      `formatVersion ${String(json.formatVersion)} is newer than this library reads (${MANIFEST_FORMAT_VERSION})`,
      'formatVersion',
    );
  }
  if (!STORAGE_DTYPES.includes(json.dtype as StorageDtype)) {
    throw fail(`unknown dtype ${JSON.stringify(json.dtype)}`, 'dtype');
  }
  if (json.shardBytes !== undefined && !(isSize(json.shardBytes) && json.shardBytes > 0)) {
    throw fail(
      `shardBytes ${JSON.stringify(json.shardBytes)} is not a positive integer`,
      'shardBytes',
    );
  }
  if (!isRecord(json.towers)) throw fail('no towers', 'towers');
  for (const [name, t] of Object.entries(json.towers)) {
    if (!['vision', 'text', 'scores'].includes(name))
      throw fail(`unknown tower '${name}'`, 'towers');
    if (!isRecord(t) || !isSafeRelativePath(t.modelJson)) {
      throw fail(
        `tower '${name}' has no modelJson path (or an unsafe one)`,
        `towers.${name}.modelJson`,
      );
    }
    for (const key of ['weightBytes', 'shards', 'parameters'] as const) {
      if (!isSize(t[key])) {
        throw fail(
          `tower '${name}': ${key} ${JSON.stringify(t[key])} is not a non-negative integer`,
          `towers.${name}.${key}`,
        );
      }
    }
  }
  if (!isRecord(json.config)) throw fail('no config', 'config');
  if (!Array.isArray(json.files) || !json.files.every(isSafeRelativePath)) {
    throw fail('files is not a list of relative paths', 'files');
  }
  if (json.digests !== undefined) {
    if (!isRecord(json.digests)) throw fail('digests is not an object', 'digests');
    for (const [path, d] of Object.entries(json.digests)) {
      if (!isSafeRelativePath(path))
        throw fail(`digests: unsafe path ${JSON.stringify(path)}`, 'digests');
      if (
        !isRecord(d) ||
        !isSize(d.size) ||
        typeof d.sha256 !== 'string' ||
        !SHA256_HEX.test(d.sha256)
      ) {
        throw fail(
          `digests['${path}'] is not {size: integer, sha256: 64 hex digits}`,
          `digests.${path}`,
        );
      }
    }
  }
  return json as unknown as SiglipArtifactsManifest;
}
