// The converted-model format: what `siglip2 convert` writes and `loadSiglip` reads. Browser-safe (no Node imports).

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

/** Validates a parsed `siglip.json`; `where` names it in messages. */
export function parseManifest(json: unknown, where: string): SiglipArtifactsManifest {
  if (!isRecord(json)) throw new Error(`${where}: not a JSON object`);
  if (json.format !== MANIFEST_FORMAT) {
    throw new Error(
      `${where}: format is ${JSON.stringify(json.format)}, expected "${MANIFEST_FORMAT}" (not a converted SigLIP model)`,
    );
  }
  if (typeof json.formatVersion !== 'number' || json.formatVersion > MANIFEST_FORMAT_VERSION) {
    throw new Error(
      `${where}: formatVersion ${String(json.formatVersion)} is newer than this library reads (${MANIFEST_FORMAT_VERSION})`,
    );
  }
  if (!STORAGE_DTYPES.includes(json.dtype as StorageDtype)) {
    throw new Error(`${where}: unknown dtype ${JSON.stringify(json.dtype)}`);
  }
  if (!isRecord(json.towers)) throw new Error(`${where}: no towers`);
  for (const [name, t] of Object.entries(json.towers)) {
    if (!['vision', 'text', 'scores'].includes(name)) {
      throw new Error(`${where}: unknown tower '${name}'`);
    }
    if (!isRecord(t) || typeof t.modelJson !== 'string') {
      throw new Error(`${where}: tower '${name}' has no modelJson path`);
    }
  }
  if (!isRecord(json.config)) throw new Error(`${where}: no config`);
  if (!Array.isArray(json.files)) throw new Error(`${where}: no files list`);
  return json as unknown as SiglipArtifactsManifest;
}
