/**
 * Skipping tests, with the reason on record. CI sets SIGLIP2_REQUIRE_BACKENDS to the backends it installs on
 * purpose (e.g. `cpu,wasm,native,webgpu,chromium-webgpu,chromium-wasm`); a suite whose backend is named there
 * fails instead of skipping, so a broken install cannot turn CI green. Every skip (for a missing backend or any
 * other reason) is appended to the file named by SIGLIP2_SKIP_LOG, one JSON object a line ({@link SkipRecord}),
 * which .ci/run prints in its closing summary.
 */
import { appendFileSync } from 'node:fs';

export const REQUIRE_BACKENDS_ENV = 'SIGLIP2_REQUIRE_BACKENDS';
export const SKIP_LOG_ENV = 'SIGLIP2_SKIP_LOG';

/** One line of the skip log. */
export interface SkipRecord {
  /** Full title of the suite the skipped tests belong to. */
  suite: string;
  /** The backend that is missing, when that is why. */
  backend?: string;
  reason: string;
  /** Titles of the tests skipped (every test under the suite when a `before` hook skips). */
  tests: string[];
}

/** The backends named in SIGLIP2_REQUIRE_BACKENDS (empty when unset). */
export function requiredBackends(env: NodeJS.ProcessEnv = process.env): Set<string> {
  const raw = env[REQUIRE_BACKENDS_ENV] ?? '';
  return new Set(
    raw
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s.length > 0),
  );
}

function allTests(suite: Mocha.Suite): string[] {
  return [...suite.tests.map((t) => t.title), ...suite.suites.flatMap(allTests)];
}

/** The suite and the tests that `ctx.skip()` skips, called from a test or from a hook. */
function skipped(ctx: Mocha.Context): { suite: string; tests: string[] } {
  const runnable = ctx.test;
  const suite = runnable?.parent;
  const suiteTitle = suite?.fullTitle() ?? '(unknown suite)';
  if ((runnable as { type?: string } | undefined)?.type === 'test') {
    return { suite: suiteTitle, tests: [runnable!.title] };
  }
  // In a "before each" hook only the test about to run is skipped; in "before all" the whole suite (mocha sets
  // currentTest there too, to the suite's first test).
  const current = ctx.currentTest;
  if (current !== undefined && /^"before each" hook/.test(runnable?.title ?? '')) {
    return { suite: suiteTitle, tests: [current.title] };
  }
  return { suite: suiteTitle, tests: suite ? allTests(suite) : [] };
}

function record(entry: SkipRecord): void {
  const log = process.env[SKIP_LOG_ENV];
  if (log !== undefined && log !== '') appendFileSync(log, `${JSON.stringify(entry)}\n`);
}

/**
 * Skips the current suite or test because `backend` is unavailable (`reason` says why), or throws when that backend
 * is required. Call it from `before`/`it` with mocha's `this`. Several backends may be named (a suite needing
 * Chromium covers both `chromium-webgpu` and `chromium-wasm`): it throws when any of them is required.
 */
export function skipUnavailable(
  ctx: Mocha.Context,
  backend: string | readonly string[],
  reason: string,
): never {
  const names = typeof backend === 'string' ? [backend] : [...backend];
  const { suite, tests } = skipped(ctx);
  const required = names.filter((b) => requiredBackends().has(b));
  if (required.length > 0) {
    throw new Error(
      `backend ${required.map((b) => `'${b}'`).join(', ')} is required (${REQUIRE_BACKENDS_ENV}) but unavailable ` +
        `in '${suite}': ${reason}`,
    );
  }
  console.log(`      skipping (${names.join(', ')} unavailable): ${reason}`);
  record({ suite, backend: names.join(','), reason, tests });
  ctx.skip();
}

/** Skips for a reason other than a missing backend (a condition of this machine), keeping the reason on record. */
export function skipBecause(ctx: Mocha.Context, reason: string): never {
  const { suite, tests } = skipped(ctx);
  console.log(`      skipping: ${reason}`);
  record({ suite, reason, tests });
  ctx.skip();
}
