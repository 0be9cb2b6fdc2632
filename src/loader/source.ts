// Where converted artifacts are read from. Browser-safe: http(s) via fetch here; Node registers file paths
// (src/loader/node.ts).
import { ArtifactFormatError, FileAccessError } from '../util/errors.js';

/** Read access to the files of a converted model, relative to its root folder / URL. */
export interface ArtifactSource {
  /** Full URL or path of a relative file (for messages and for the processor file references). */
  locate(rel: string): string;
  /** A file's bytes; fails with a message naming the file when it is missing or unreadable. */
  bytes(rel: string): Promise<ArrayBuffer>;
  /** Local files that weights can be mapped from instead of read (Node, see src/loader/file_mapping.ts). */
  files?: MappableFiles;
}

/** A byte range of a file (relative path, as for ArtifactSource.bytes). */
export interface FileRange {
  rel: string;
  offset: number;
  length: number;
}

/** Local file access for loading float32 weights as views of memory-mapped files (no copy). */
export interface MappableFiles {
  /**
   * Checks a file and returns its size without reading it into memory (a verified source hashes it by ordinary
   * reads: the bytes pass through the page cache, not this process's memory). Errors name the file.
   */
  check(rel: string): Promise<number>;
  /** SHA-256 (hex) and size of a file, read in chunks. */
  digest(rel: string): Promise<{ sha256: string; size: number }>;
  /**
   * The ranges, concatenated, as one memory-mapped ArrayBuffer of `elementBytes`-sized values, or undefined when
   * they cannot be mapped (misaligned offset, a range continuing in another file off a page boundary, mapping
   * unavailable): then read them. `random`: the values are read at scattered rows (a token table), so only the
   * pages read become resident (no readahead, no huge pages).
   */
  map(ranges: FileRange[], elementBytes: number, random?: boolean): ArrayBuffer | undefined;
  /** The ranges, concatenated, read into a new buffer. */
  read(ranges: FileRange[]): Promise<Uint8Array>;
  /** Why map() is unavailable here, or undefined when it is available. */
  unavailable(): string | undefined;
}

export async function readJson(source: ArtifactSource, rel: string): Promise<unknown> {
  const text = new TextDecoder().decode(await source.bytes(rel));
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new ArtifactFormatError(
      `${source.locate(rel)}: not valid JSON (${(e as Error).message})`,
      source.locate(rel),
      undefined,
      { cause: e },
    );
  }
}

export interface HttpSourceOptions {
  fetchFunc?: typeof fetch;
  requestInit?: RequestInit;
}

/** Files under an http(s) base URL. */
export function httpSource(baseUrl: string, opts: HttpSourceOptions = {}): ArtifactSource {
  const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  const fetchFunc = opts.fetchFunc ?? globalThis.fetch.bind(globalThis);
  const locate = (rel: string) => base + rel.split('/').map(encodeURIComponent).join('/');
  return {
    locate,
    async bytes(rel) {
      const url = locate(rel);
      let res: Response;
      try {
        res = await fetchFunc(url, opts.requestInit);
      } catch (e) {
        throw new FileAccessError(`${url}: request failed (${(e as Error).message})`, url, {
          cause: e,
        });
      }
      if (!res.ok) {
        throw new FileAccessError(
          `${url}: HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}` +
            (res.status === 404 ? ' (file not found)' : ''),
          url,
        );
      }
      return res.arrayBuffer();
    },
  };
}

/** Turns a location into a source, or returns undefined when it does not handle that kind of location. */
export type SourceFactory = (location: string) => ArtifactSource | undefined;

const factories: SourceFactory[] = [];

/** Registers a way to read locations (Node registers `file://` URLs and plain paths). */
export function registerSourceFactory(factory: SourceFactory): void {
  factories.push(factory);
}

/** The folder (or base URL) of a location that may name the folder or its `siglip.json`. */
export function rootOf(location: string): string {
  return location.replace(/\/siglip\.json$/, '').replace(/\/+$/, '');
}

export function sourceFor(location: string, opts: HttpSourceOptions = {}): ArtifactSource {
  for (const f of factories) {
    const s = f(location);
    if (s) return s;
  }
  if (/^https?:\/\//i.test(location)) return httpSource(rootOf(location), opts);
  throw new Error(
    `${location}: cannot read this location (expected http(s)://, indexeddb://, and in Node a file:// URL ` +
      "or a path; in Node import 'siglip2-tfjs' or 'siglip2-tfjs/loader/node' to read files)",
  );
}
