// SHA-256 of converted-model files, checked against siglip.json as each file arrives. Browser-safe: Web Crypto by
// default; Node registers node:crypto (src/loader/node.ts).
import { IntegrityError } from '../util/errors.js';
import type { FileDigest } from './manifest.js';
import type { ArtifactSource, MappableFiles } from './source.js';

/** Lowercase hex SHA-256 of some bytes. */
export type Sha256Function = (bytes: Uint8Array) => Promise<string> | string;

function hex(buffer: ArrayBuffer): string {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Web Crypto's digest (the browser; needs a secure context: https or localhost). */
const webCryptoSha256: Sha256Function = async (bytes) => {
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) {
    throw new Error(
      'Web Crypto (crypto.subtle) is not available here (pages need https or localhost); ' +
        'pass verify: false to load without checking the SHA-256 digests',
    );
  }
  return hex(await subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
};

let sha256Impl: Sha256Function = webCryptoSha256;

/** Replaces the SHA-256 implementation (Node registers node:crypto, faster than Web Crypto for small buffers). */
export function registerSha256(f: Sha256Function): void {
  sha256Impl = f;
}

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  return sha256Impl(bytes);
}

/** Throws an {@link IntegrityError} naming the file unless `bytes` has the recorded size and SHA-256. */
export async function checkDigest(
  file: string,
  bytes: Uint8Array,
  expected: FileDigest,
): Promise<void> {
  checkDigestOf(file, { sha256: await sha256Hex(bytes), size: bytes.byteLength }, expected);
}

/** Throws an {@link IntegrityError} naming the file unless `actual` is the recorded size and SHA-256. */
export function checkDigestOf(
  file: string,
  actualDigest: { sha256: string; size: number },
  expected: FileDigest,
): void {
  const actual = actualDigest.sha256;
  const size = actualDigest.size;
  if (size === expected.size && actual === expected.sha256) return;
  const sizeNote =
    size === expected.size
      ? ''
      : ` (${size} bytes, siglip.json records ${expected.size}: truncated or replaced)`;
  throw new IntegrityError(
    `${file}: SHA-256 mismatch, expected ${expected.sha256}, got ${actual}${sizeNote}; the file is corrupt ` +
      'or not the one converted (convert again, or pass verify: false / --no-verify to load it anyway)',
    file,
    expected,
    { sha256: actual, size },
  );
}

/**
 * An ArtifactSource that checks every file it returns against the digests of siglip.json, on the bytes as
 * fetched (no second read). A file siglip.json does not list is refused. `read` collects the paths read, so the
 * caller can tell when a listed file was never asked for.
 */
export function verifiedSource(
  source: ArtifactSource,
  digests: Record<string, FileDigest>,
  manifestLocation: string,
): ArtifactSource & { read: Set<string> } {
  const read = new Set<string>();
  const expectedFor = (rel: string): FileDigest => {
    const expected = Object.prototype.hasOwnProperty.call(digests, rel) ? digests[rel] : undefined;
    if (!expected) {
      throw new IntegrityError(
        `${source.locate(rel)}: not listed in the digests of ${manifestLocation} (a file the converter did ` +
          'not write)',
        source.locate(rel),
        {},
        {},
      );
    }
    return expected;
  };
  const inner = source.files;
  // Mapped weights: each file is hashed by ordinary reads before any of it is mapped.
  const files: MappableFiles | undefined = inner && {
    ...inner,
    async check(rel) {
      const expected = expectedFor(rel);
      const actual = await inner.digest(rel);
      checkDigestOf(source.locate(rel), actual, expected);
      read.add(rel);
      return actual.size;
    },
  };
  return {
    read,
    files,
    locate: (rel) => source.locate(rel),
    async bytes(rel) {
      const expected = expectedFor(rel);
      const buffer = await source.bytes(rel);
      await checkDigest(source.locate(rel), new Uint8Array(buffer), expected);
      read.add(rel);
      return buffer;
    },
  };
}
