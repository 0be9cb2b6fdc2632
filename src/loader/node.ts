// Node-only: reading converted models from disk, for loadSiglip and for plain `tf.loadLayersModel`.
// Importing this module registers both (the package's main entry imports it).
import * as tf from '@tensorflow/tfjs';
import { createHash } from 'node:crypto';
import { existsSync, promises as fsp } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FileAccessError } from '../util/errors.js';
import { registerSha256 } from './digest.js';
import { mappableFiles } from './file_mapping.js';
import { type ArtifactSource, registerSourceFactory, rootOf } from './source.js';
import { checkTopologyGraph } from './topology.js';
import { checkManifestAgainstModel, entryBytes, parseModelJson } from './tower.js';

function toPath(location: string): string | undefined {
  if (location.startsWith('file://')) return fileURLToPath(location);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(location)) return undefined; // another scheme
  return location;
}

/** Files under a local folder. */
export function fileSource(dir: string): ArtifactSource {
  const root = resolve(dir);
  const locate = (rel: string) => join(root, ...rel.split('/'));
  return {
    locate,
    files: mappableFiles(locate),
    async bytes(rel) {
      const path = locate(rel);
      let buf: Buffer;
      try {
        buf = await fsp.readFile(path);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        throw new FileAccessError(
          `${path}: ${code === 'ENOENT' ? 'missing file' : 'cannot read'} (${(e as Error).message})`,
          path,
          { cause: e },
        );
      }
      return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
    },
  };
}

registerSha256((bytes) => createHash('sha256').update(bytes).digest('hex'));

registerSourceFactory((location) => {
  const path = toPath(location);
  return path === undefined ? undefined : fileSource(rootOf(path));
});

/**
 * A `tf.io` IOHandler reading a LayersModel `model.json` and its shards from disk (the role tfjs-node's
 * `file://` handler plays). Weights come back as one ArrayBuffer per shard, never one buffer for all, after
 * checking that the shards hold exactly the bytes the weights manifest describes.
 */
export function fileModelHandler(modelJsonPath: string): tf.io.IOHandler {
  return {
    async load(): Promise<tf.io.ModelArtifacts> {
      const source = fileSource(dirname(modelJsonPath));
      let text: string;
      try {
        text = await fsp.readFile(modelJsonPath, 'utf8');
      } catch (e) {
        throw new Error(`${modelJsonPath}: cannot read model.json (${(e as Error).message})`, {
          cause: e,
        });
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (e) {
        throw new Error(`${modelJsonPath}: not valid JSON (${(e as Error).message})`, {
          cause: e,
        });
      }
      const json = parseModelJson(parsed, modelJsonPath);
      const manifest = json.weightsManifest!;
      // Check names and shapes against the topology before TF.js does (its messages name no file).
      checkTopologyGraph(json.modelTopology, modelJsonPath);
      const probe = await tf.models.modelFromJSON({ modelTopology: json.modelTopology });
      try {
        checkManifestAgainstModel(manifest, probe, modelJsonPath);
      } finally {
        probe.dispose();
      }
      const weightSpecs: tf.io.WeightsManifestEntry[] = [];
      const weightData: ArrayBuffer[] = [];
      for (const group of manifest) {
        const need = group.weights.reduce((s, e) => s + entryBytes(e, modelJsonPath), 0);
        let have = 0;
        const sizes: number[] = [];
        for (const p of group.paths) {
          const buf = await source.bytes(p);
          sizes.push(buf.byteLength);
          have += buf.byteLength;
          weightData.push(buf);
        }
        if (have !== need) {
          // Uniform shards: every one but the last has the first one's size.
          const odd = sizes.findIndex((s, i) => i < sizes.length - 1 && s !== sizes[0]);
          const culprit = group.paths[odd >= 0 ? odd : sizes.length - 1];
          throw new Error(
            `${modelJsonPath}: the shard files hold ${have} bytes, the weightsManifest needs ${need}; ` +
              `${source.locate(culprit)} looks truncated or corrupt`,
          );
        }
        weightSpecs.push(...group.weights);
      }
      return {
        modelTopology: json.modelTopology,
        format: json.format,
        generatedBy: json.generatedBy,
        convertedBy: json.convertedBy ?? undefined,
        userDefinedMetadata:
          json.userDefinedMetadata as tf.io.ModelArtifacts['userDefinedMetadata'],
        weightSpecs,
        weightData,
      };
    },
  };
}

let routerRegistered = false;

/**
 * Lets `tf.loadLayersModel('file:///…/model.json')` and `tf.loadLayersModel('/…/model.json')` read from disk
 * (unless another handler, e.g. tfjs-node's, already does). Called on import.
 */
export function registerFileRouter(): void {
  if (routerRegistered) return;
  routerRegistered = true;
  if (tf.io.getLoadHandlers('file:///probe/model.json').length > 0) return;
  // A router returns null for URLs it does not handle (as tfjs's own http router does).
  const none = null as unknown as tf.io.IOHandler;
  tf.io.registerLoadRouter((url: string | string[]) => {
    if (typeof url !== 'string') return none;
    const path = toPath(url);
    if (path === undefined || !path.endsWith('.json')) return none;
    if (!url.startsWith('file://') && !existsSync(path)) return none;
    return fileModelHandler(path);
  });
}

registerFileRouter();
