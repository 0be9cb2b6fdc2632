// Node-only: memory-mapping weight files through the native addon (native/src/mmap.cc), for loading float32 weights
// as views of the files instead of copies. Hashing for verification reads the files in chunks (page cache) on
// worker threads, so it never makes a mapping resident.
import { promises as fsp } from 'node:fs';
import { type NativeAddon, loadNativeAddon } from '../backends/native/addon.js';
import { ArtifactFormatError, FileAccessError } from '../util/errors.js';
import { digestFileOnWorker } from './hash_pool.js';
import type { FileRange, MappableFiles } from './source.js';

/** Bytes read at a time when hashing or reading ranges. */
const CHUNK = 4 * 1024 * 1024;

function accessError(path: string, e: unknown): FileAccessError {
  const code = (e as NodeJS.ErrnoException).code;
  return new FileAccessError(
    `${path}: ${code === 'ENOENT' ? 'missing file' : 'cannot read'} (${(e as Error).message})`,
    path,
    { cause: e },
  );
}

/** The addon when it is built and can map files, else the reason it cannot. */
function mappingAddon(): NativeAddon | string {
  const addon = loadNativeAddon();
  if (typeof addon === 'string') return addon;
  if (typeof addon.mapFiles !== 'function') {
    return 'the native addon was built without mapFiles (run npm run build:native)';
  }
  return addon;
}

/**
 * Whether `ranges` can be mapped as one region of `elementBytes` values: the first starts on an element boundary
 * and every later one starts a page both in its file and in the region.
 */
export function mappable(
  ranges: readonly FileRange[],
  elementBytes: number,
  page: number,
): boolean {
  if (!ranges.length || ranges[0].offset % elementBytes !== 0) return false;
  let at = ranges[0].offset % page;
  for (let i = 0; i < ranges.length; i++) {
    if (i > 0 && (at % page !== 0 || ranges[i].offset % page !== 0)) return false;
    at += ranges[i].length;
  }
  return at % elementBytes === 0;
}

/** MappableFiles over the files `locate` names (absolute paths). */
export function mappableFiles(locate: (rel: string) => string): MappableFiles {
  let addon: NativeAddon | string | undefined;
  const getAddon = () => (addon ??= mappingAddon());
  return {
    async check(rel) {
      const path = locate(rel);
      try {
        const st = await fsp.stat(path);
        if (!st.isFile()) throw new Error('not a regular file');
        return st.size;
      } catch (e) {
        throw accessError(path, e);
      }
    },
    async digest(rel) {
      const path = locate(rel);
      try {
        return await digestFileOnWorker(path);
      } catch (e) {
        throw accessError(path, e);
      }
    },
    map(ranges, elementBytes, random = false) {
      const a = getAddon();
      if (typeof a === 'string') return undefined;
      if (!mappable(ranges, elementBytes, a.mappedStats().pageSize)) return undefined;
      const paths = ranges.map((r) => locate(r.rel));
      try {
        return a.mapFiles(
          paths,
          ranges.map((r) => r.offset),
          ranges.map((r) => r.length),
          elementBytes,
          random,
        );
      } catch (e) {
        throw new ArtifactFormatError((e as Error).message, paths[0], undefined, { cause: e });
      }
    },
    async read(ranges) {
      const out = new Uint8Array(ranges.reduce((s, r) => s + r.length, 0));
      let at = 0;
      for (const r of ranges) {
        const path = locate(r.rel);
        let fh: fsp.FileHandle | undefined;
        try {
          fh = await fsp.open(path, 'r');
          let done = 0;
          while (done < r.length) {
            const { bytesRead } = await fh.read(
              out,
              at + done,
              Math.min(CHUNK, r.length - done),
              r.offset + done,
            );
            if (bytesRead === 0) {
              throw new ArtifactFormatError(
                `${path}: ends before byte ${r.offset + r.length} (truncated file?)`,
                path,
              );
            }
            done += bytesRead;
          }
        } catch (e) {
          if (e instanceof ArtifactFormatError) throw e;
          throw accessError(path, e);
        } finally {
          await fh?.close();
        }
        at += r.length;
      }
      return out;
    },
    unavailable() {
      const a = getAddon();
      return typeof a === 'string' ? a : undefined;
    },
  };
}
