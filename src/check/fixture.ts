import { existsSync, promises as fsp } from 'node:fs';
import { join } from 'node:path';
import type { Comparison, Tolerance } from './compare.js';

/** A fixture folder's `cases.json`, the parts every kind shares. */
export interface CasesJson {
  case?: string;
  model_class?: string;
  inputs?: Record<string, unknown>;
  outputs?: Record<string, { dtype?: string; shape?: number[] } | number[]>;
  suggested_tolerance?: Partial<Tolerance> & Record<string, unknown>;
  [key: string]: unknown;
}

export async function readCases(dir: string): Promise<CasesJson> {
  const path = join(dir, 'cases.json');
  if (!existsSync(path)) throw new Error(`${dir}: no cases.json (is this a fixture folder?)`);
  try {
    return JSON.parse(await fsp.readFile(path, 'utf8')) as CasesJson;
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${(e as Error).message})`, { cause: e });
  }
}

export function toleranceOf(
  cases: CasesJson,
  fallback: Tolerance = { atol: 1e-4, rtol: 1e-4 },
): Tolerance {
  const t = cases.suggested_tolerance ?? {};
  return {
    atol: typeof t.atol === 'number' ? t.atol : fallback.atol,
    rtol: typeof t.rtol === 'number' ? t.rtol : fallback.rtol,
  };
}

export interface CheckOptions {
  /** TF.js backend to run on (the caller has already selected it). */
  backend?: string;
}

/** One kind of fixture folder that `siglip2 check` knows how to run. */
export interface FixtureKind {
  name: string;
  /** True when the folder is of this kind (looked at in registration order; first match wins). */
  detect(dir: string, cases: CasesJson | undefined): boolean;
  run(dir: string, opts: CheckOptions): Promise<Comparison[]>;
}

const kinds: FixtureKind[] = [];

export function registerFixtureKind(kind: FixtureKind): void {
  kinds.push(kind);
}

export interface CheckReport {
  fixture: string;
  kind: string;
  backend?: string;
  ok: boolean;
  outputs: Comparison[];
}

/** Detects the folder's kind and runs it. */
export async function runFixture(dir: string, opts: CheckOptions = {}): Promise<CheckReport> {
  if (!existsSync(dir)) throw new Error(`${dir}: no such fixture folder`);
  const cases = existsSync(join(dir, 'cases.json')) ? await readCases(dir) : undefined;
  const kind = kinds.find((k) => k.detect(dir, cases));
  if (!kind) {
    throw new Error(
      `${dir}: not a fixture folder of a known kind (known: ${kinds.map((k) => k.name).join(', ')})`,
    );
  }
  const outputs = await kind.run(dir, opts);
  return {
    fixture: dir,
    kind: kind.name,
    backend: opts.backend,
    ok: outputs.length > 0 && outputs.every((o) => o.ok),
    outputs,
  };
}
