// Node-only: SHA-256 of whole files on worker threads, so verifying a model's shards uses every core instead of one
// (the main thread only waits). Each worker reads its file in 4 MiB chunks into one buffer: the bytes pass through
// the page cache, never a buffer the size of the file.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { openSync, readSync, closeSync } = require('node:fs');
const { createHash } = require('node:crypto');
const buf = Buffer.allocUnsafe(4 * 1024 * 1024);
parentPort.on('message', ({ id, path }) => {
  let fd;
  try {
    fd = openSync(path, 'r');
    const hash = createHash('sha256');
    let size = 0;
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, size);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
      size += n;
    }
    parentPort.postMessage({ id, sha256: hash.digest('hex'), size });
  } catch (e) {
    parentPort.postMessage({ id, error: String(e && e.message), code: e && e.code });
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
});
`;

interface Reply {
  id: number;
  sha256?: string;
  size?: number;
  error?: string;
  code?: string;
}

interface Pending {
  resolve: (d: { sha256: string; size: number }) => void;
  reject: (e: Error) => void;
}

/** Workers kept while jobs run, ended when the pool falls idle. */
class HashPool {
  private workers: Worker[] = [];
  private idle: Worker[] = [];
  private queue: { id: number; path: string }[] = [];
  private pending = new Map<number, Pending>();
  private nextId = 1;

  constructor(private readonly size: number) {}

  digest(path: string): Promise<{ sha256: string; size: number }> {
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      this.pending.set(id, { resolve, reject });
      this.queue.push({ id, path });
      this.pump();
    });
  }

  private spawn(): Worker {
    const w = new Worker(WORKER_SOURCE, { eval: true });
    w.on('message', (r: Reply) => {
      const p = this.pending.get(r.id);
      this.pending.delete(r.id);
      if (p) {
        if (r.error !== undefined) {
          const e = new Error(r.error) as NodeJS.ErrnoException;
          if (r.code) e.code = r.code;
          p.reject(e);
        } else p.resolve({ sha256: r.sha256!, size: r.size! });
      }
      this.idle.push(w);
      this.pump();
    });
    w.on('error', (e) => {
      // A worker that dies fails every job (the ids it held are unknown): the caller reports the file.
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
      this.queue = [];
      this.stop();
    });
    this.workers.push(w);
    return w;
  }

  private pump(): void {
    while (this.queue.length) {
      const w = this.idle.pop() ?? (this.workers.length < this.size ? this.spawn() : undefined);
      if (!w) return;
      w.postMessage(this.queue.shift());
    }
    if (this.pending.size === 0) this.stop();
  }

  private stop(): void {
    for (const w of this.workers) void w.terminate();
    this.workers = [];
    this.idle = [];
  }
}

let pool: HashPool | undefined;

/** SHA-256 (hex) and size of a file, hashed on a worker thread (up to one per core, at most 8). */
export function digestFileOnWorker(path: string): Promise<{ sha256: string; size: number }> {
  pool ??= new HashPool(Math.max(1, Math.min(8, availableParallelism())));
  return pool.digest(path);
}
