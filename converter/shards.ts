import { createHash, type Hash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import type { FileDigest } from '../src/loader/manifest.js';

/** TF.js's shard file naming: `group1-shard3of7.bin`. */
export function shardFileNames(totalBytes: number, shardBytes: number): string[] {
  const n = Math.max(1, Math.ceil(totalBytes / shardBytes));
  return Array.from({ length: n }, (_, i) => `group1-shard${i + 1}of${n}.bin`);
}

/**
 * Writes one continuous byte stream (the weights, in manifest order) into fixed-size shard files, the layout
 * `tf.loadLayersModel` reads: every shard but the last holds exactly `shardBytes`.
 */
export class ShardWriter {
  readonly paths: string[];
  private index = 0;
  private written = 0;
  private inShard = 0;
  private handle?: fsp.FileHandle;
  private hash?: Hash;
  /** Size and SHA-256 of each shard written, by file name (complete after `close`). */
  readonly digests = new Map<string, FileDigest>();

  constructor(
    private readonly dir: string,
    readonly totalBytes: number,
    readonly shardBytes: number,
  ) {
    if (!(Number.isInteger(shardBytes) && shardBytes > 0)) {
      throw new Error(`shard size must be a positive whole number of bytes, got ${shardBytes}`);
    }
    this.paths = shardFileNames(totalBytes, shardBytes);
  }

  async write(bytes: Uint8Array): Promise<void> {
    if (this.written + bytes.byteLength > this.totalBytes) {
      throw new Error(
        `internal: writing past the announced ${this.totalBytes} bytes of weights in ${this.dir}`,
      );
    }
    let offset = 0;
    while (offset < bytes.byteLength) {
      if (!this.handle) await this.openShard();
      const n = Math.min(bytes.byteLength - offset, this.shardBytes - this.inShard);
      await this.handle!.write(bytes, offset, n);
      this.hash!.update(bytes.subarray(offset, offset + n));
      offset += n;
      this.inShard += n;
      this.written += n;
      if (this.inShard === this.shardBytes) await this.closeShard();
    }
  }

  async close(): Promise<void> {
    if (this.written !== this.totalBytes) {
      await this.handle?.close();
      throw new Error(
        `internal: wrote ${this.written} of ${this.totalBytes} weight bytes in ${this.dir}`,
      );
    }
    if (!this.handle && this.index < this.paths.length) {
      // Zero weights: still write the (empty) single shard the manifest names.
      await this.openShard();
    }
    if (this.handle) await this.closeShard();
  }

  private async openShard(): Promise<void> {
    this.handle = await fsp.open(join(this.dir, this.paths[this.index]), 'w');
    this.hash = createHash('sha256');
  }

  private async closeShard(): Promise<void> {
    await this.handle!.close();
    this.digests.set(this.paths[this.index], {
      size: this.inShard,
      sha256: this.hash!.digest('hex'),
    });
    this.handle = undefined;
    this.hash = undefined;
    this.index++;
    this.inShard = 0;
  }
}
