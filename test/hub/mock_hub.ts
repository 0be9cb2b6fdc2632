/**
 * A local stand-in for the Hugging Face hub, on 127.0.0.1 and a random port, serving checkpoint folders the way
 * huggingface.co does: model info and tree APIs, `/{repo}/resolve/{rev}/{file}` with the hub's headers, LFS files
 * redirected to a signed CDN-like path, HEAD, Range requests, gated repos, the hub's error codes, and transfers
 * that break halfway on request. It closes itself after `lifetimeMs`.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, relative, sep } from 'node:path';

export interface MockRepo {
  /** `org/name`. */
  id: string;
  /** Folder whose files (recursively) make up the repo. */
  folder: string;
  /** Commit sha of `main` (default: derived from the id). */
  commit?: string;
  /** Extra branch or tag names that resolve to the commit. */
  refs?: string[];
  /** Needs a valid token. */
  gated?: boolean;
  /** Which files are LFS (default: *.safetensors, *.model, *.bin). */
  isLfs?: (path: string) => boolean;
}

export interface MockHubOptions {
  repos: MockRepo[];
  /** The token the hub accepts (default `hf_mockvalidtoken`). */
  validToken?: string;
  /** Break transfers of `file`: send `afterBytes` of the body then close the socket, `times` times. */
  cut?: { file: string; afterBytes: number; times: number };
  /** Tree listing page size; more pages are linked with a `Link: <...>; rel="next"` header (default 1000). */
  treePageSize?: number;
  /** Close the server after this long even if the test forgets (default 60 s). */
  lifetimeMs?: number;
}

export interface RequestRecord {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  status: number;
}

export interface MockHub {
  /** `http://127.0.0.1:<port>`. */
  url: string;
  validToken: string;
  requests: RequestRecord[];
  commitOf(repoId: string): string;
  /** Files transferred (GET of a resolve path answered 200/206 directly, or of a CDN path). */
  transfers(): RequestRecord[];
  close(): Promise<void>;
}

interface ServedFile {
  path: string;
  data: Buffer;
  lfs: boolean;
  sha256: string;
  /** Git blob sha1 of the content (non-LFS) or of the pointer file (LFS). */
  gitOid: string;
}

function gitBlobSha1(data: Buffer): string {
  return createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex');
}

function lfsPointer(sha256: string, size: number): Buffer {
  return Buffer.from(
    `version https://git-lfs.github.com/spec/v1\noid sha256:${sha256}\nsize ${size}\n`,
  );
}

function walk(folder: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(folder)) {
    const p = join(folder, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else out.push(p);
  }
  return out.sort();
}

/** File contents and hashes, kept across mock hubs of one test run (keyed by path, size and mtime). */
const hashed = new Map<string, { data: Buffer; sha256: string; gitSha1: string }>();
function readHashed(abs: string): { data: Buffer; sha256: string; gitSha1: string } {
  const st = statSync(abs);
  const key = `${abs}:${st.size}:${st.mtimeMs}`;
  let entry = hashed.get(key);
  if (!entry) {
    const data = readFileSync(abs);
    entry = {
      data,
      sha256: createHash('sha256').update(data).digest('hex'),
      gitSha1: gitBlobSha1(data),
    };
    hashed.set(key, entry);
  }
  return entry;
}

const defaultLfs = (path: string) => /\.(safetensors|model|bin)$/.test(path);

export async function startMockHub(opts: MockHubOptions): Promise<MockHub> {
  const validToken = opts.validToken ?? 'hf_mockvalidtoken';
  const secret = randomBytes(16);
  const pageSize = opts.treePageSize ?? 1000;
  const repos = new Map<
    string,
    { repo: MockRepo; commit: string; files: Map<string, ServedFile>; refs: Set<string> }
  >();
  const blobs = new Map<string, ServedFile>();
  for (const repo of opts.repos) {
    const commit = repo.commit ?? createHash('sha1').update(`commit:${repo.id}`).digest('hex');
    const files = new Map<string, ServedFile>();
    for (const abs of walk(repo.folder)) {
      const path = relative(repo.folder, abs).split(sep).join('/');
      const { data, sha256, gitSha1 } = readHashed(abs);
      const lfs = (repo.isLfs ?? defaultLfs)(path);
      const gitOid = lfs ? gitBlobSha1(lfsPointer(sha256, data.length)) : gitSha1;
      const f: ServedFile = { path, data, lfs, sha256, gitOid };
      files.set(path, f);
      if (lfs) blobs.set(sha256, f);
    }
    repos.set(repo.id, {
      repo,
      commit,
      files,
      refs: new Set(['main', commit, ...(repo.refs ?? [])]),
    });
  }
  const requests: RequestRecord[] = [];
  let cutsLeft = opts.cut?.times ?? 0;
  const sign = (sha: string) => createHmac('sha256', secret).update(sha).digest('hex').slice(0, 16);

  const server = createServer((req, res) => {
    const record: RequestRecord = {
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      headers: req.headers,
      status: 0,
    };
    requests.push(record);
    const send = (
      status: number,
      headers: Record<string, string | number>,
      body?: Buffer | string,
    ) => {
      record.status = status;
      res.writeHead(status, headers);
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    const error = (status: number, message: string, code?: string) =>
      send(
        status,
        {
          'Content-Type': 'application/json',
          'X-Error-Message': message,
          ...(code ? { 'X-Error-Code': code } : {}),
        },
        JSON.stringify({ error: message }),
      );
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const segments = url.pathname.split('/').slice(1).map(decodeURIComponent);

    if (req.method !== 'GET' && req.method !== 'HEAD') return error(405, 'method not allowed');

    // CDN: /cdn/<sha256>?sig=...
    if (segments[0] === 'cdn' && segments.length === 2) {
      const f = blobs.get(segments[1]);
      if (!f || url.searchParams.get('sig') !== sign(f.sha256)) {
        return error(403, 'Request has expired or the signature does not match');
      }
      return serveBytes(res, req.headers.range, f, { ETag: `"${f.sha256}"` }, record);
    }

    // Token check comes first, as on the hub.
    const auth = req.headers.authorization;
    const authenticated = auth === `Bearer ${validToken}`;
    if (auth !== undefined && !authenticated) {
      return error(401, 'Invalid credentials in Authorization header');
    }

    const api = segments[0] === 'api' && segments[1] === 'models';
    const [org, name] = api ? segments.slice(2, 4) : segments.slice(0, 2);
    const entry = repos.get(`${org}/${name}`);
    const rest = api ? segments.slice(4) : segments.slice(2);
    const known = api
      ? rest.length === 0 || rest[0] === 'revision' || rest[0] === 'tree'
      : rest[0] === 'resolve' && rest.length >= 3;
    if (!known) return error(404, 'Not found');
    if (!entry) return error(404, 'Repository not found', 'RepoNotFound');
    if (entry.repo.gated && !authenticated) {
      return error(
        401,
        `Access to model ${entry.repo.id} is restricted. You must have access to it and be authenticated to access it. Please log in.`,
        'GatedRepo',
      );
    }
    const rev = rest.length === 0 ? 'main' : rest[1];
    if (!entry.refs.has(rev)) return error(404, `Invalid rev id: ${rev}`, 'RevisionNotFound');

    if (api && rest[0] !== 'tree') {
      return send(
        200,
        { 'Content-Type': 'application/json' },
        JSON.stringify({
          _id: createHash('md5').update(entry.repo.id).digest('hex').slice(0, 24),
          id: entry.repo.id,
          modelId: entry.repo.id,
          sha: entry.commit,
          private: false,
          gated: entry.repo.gated ? 'manual' : false,
          downloads: 0,
          likes: 0,
          lastModified: '2025-02-20T00:00:00.000Z',
          pipeline_tag: 'zero-shot-image-classification',
          siblings: [...entry.files.keys()].map((rfilename) => ({ rfilename })),
        }),
      );
    }

    if (api) {
      // tree/<rev>[/<path>]?recursive=true&cursor=N
      const prefix = rest.slice(2).join('/');
      const recursive = url.searchParams.get('recursive') === 'true';
      const items: unknown[] = [];
      const dirs = new Set<string>();
      for (const f of entry.files.values()) {
        if (prefix && !f.path.startsWith(prefix + '/')) continue;
        const sub = prefix ? f.path.slice(prefix.length + 1) : f.path;
        if (!recursive && sub.includes('/')) {
          dirs.add((prefix ? prefix + '/' : '') + sub.split('/')[0]);
          continue;
        }
        items.push({
          type: 'file',
          oid: f.gitOid,
          size: f.lfs ? lfsPointer(f.sha256, f.data.length).length : f.data.length,
          path: f.path,
          ...(f.lfs
            ? {
                lfs: {
                  oid: f.sha256,
                  size: f.data.length,
                  pointerSize: lfsPointer(f.sha256, f.data.length).length,
                },
              }
            : {}),
        });
      }
      for (const d of dirs)
        items.push({ type: 'directory', oid: '0'.repeat(40), size: 0, path: d });
      const cursor = Number(url.searchParams.get('cursor') ?? 0);
      const page = items.slice(cursor, cursor + pageSize);
      const headers: Record<string, string> = { 'Content-Type': 'application/json' };
      if (cursor + pageSize < items.length) {
        const next = new URL(url.href);
        next.searchParams.set('cursor', String(cursor + pageSize));
        const host = `http://${req.headers.host}`;
        headers.Link = `<${host}${next.pathname}${next.search}>; rel="next"`;
      }
      return send(200, headers, JSON.stringify(page));
    }

    // resolve/<rev>/<path...>
    const path = rest.slice(2).join('/');
    const f = entry.files.get(path);
    if (!f) return error(404, 'Entry not found', 'EntryNotFound');
    const common = { 'X-Repo-Commit': entry.commit };
    if (f.lfs) {
      const pointer = lfsPointer(f.sha256, f.data.length);
      return send(
        302,
        {
          ...common,
          Location: `/cdn/${f.sha256}?sig=${sign(f.sha256)}`,
          ETag: `"${f.gitOid}"`,
          'X-Linked-Etag': `"${f.sha256}"`,
          'X-Linked-Size': f.data.length,
          'Content-Type': 'text/plain; charset=utf-8',
          'Content-Length': Buffer.byteLength('Found'),
          'X-Pointer-Size': pointer.length,
        },
        'Found',
      );
    }
    return serveBytes(res, req.headers.range, f, { ...common, ETag: `"${f.gitOid}"` }, record);
  });

  function serveBytes(
    res: ServerResponse,
    range: string | undefined,
    f: ServedFile,
    headers: Record<string, string>,
    record: RequestRecord,
  ): void {
    const size = f.data.length;
    let start = 0;
    let end = size - 1;
    let status = 200;
    if (range !== undefined) {
      const m = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
      const a = m?.[1] ? Number(m[1]) : NaN;
      const b = m?.[2] ? Number(m[2]) : size - 1;
      if (!m || Number.isNaN(a) || a >= size || b < a) {
        record.status = 416;
        res.writeHead(416, { 'Content-Range': `bytes */${size}` });
        res.end();
        return;
      }
      start = a;
      end = Math.min(b, size - 1);
      status = 206;
    }
    const body = f.data.subarray(start, end + 1);
    record.status = status;
    res.writeHead(status, {
      ...headers,
      'Accept-Ranges': 'bytes',
      'Content-Length': body.length,
      'Content-Type': 'application/octet-stream',
      ...(status === 206 ? { 'Content-Range': `bytes ${start}-${end}/${size}` } : {}),
    });
    if (record.method === 'HEAD') {
      res.end();
      return;
    }
    if (opts.cut && opts.cut.file === f.path && cutsLeft > 0 && body.length > opts.cut.afterBytes) {
      cutsLeft--;
      res.write(body.subarray(0, opts.cut.afterBytes), () => res.socket?.end());
      return;
    }
    res.end(body);
  }

  server.maxConnections = 64;
  server.requestTimeout = 30_000;
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  let closed: Promise<void> | null = null;
  const close = () => {
    closed ??= new Promise<void>((resolve) => {
      clearTimeout(timer);
      server.close(() => resolve());
      server.closeAllConnections();
    });
    return closed;
  };
  const timer = setTimeout(() => void close(), opts.lifetimeMs ?? 60_000);
  timer.unref();
  return {
    url: `http://127.0.0.1:${port}`,
    validToken,
    requests,
    commitOf(repoId: string) {
      const e = repos.get(repoId);
      if (!e) throw new Error(`mock hub has no repo ${repoId}`);
      return e.commit;
    },
    transfers() {
      return requests.filter(
        (r) =>
          r.method === 'GET' &&
          (r.status === 200 || r.status === 206) &&
          (r.url.startsWith('/cdn/') || r.url.includes('/resolve/')),
      );
    },
    close,
  };
}
