/**
 * Skipping a backend's tests, except where it is required. CI sets SIGLIP2_REQUIRE_BACKENDS to the backends it
 * installs on purpose (e.g. `cpu,wasm,native,webgpu,chromium-webgpu,chromium-wasm`); a suite whose backend is named
 * there fails instead of skipping, so a broken install cannot turn CI green. Every skip's reason is appended to the
 * file named by SIGLIP2_SKIP_LOG (one JSON object a line: suite, backend, reason) for the closing summary.
 */
import { appendFileSync } from 'node:fs';

export const REQUIRE_BACKENDS_ENV = 'SIGLIP2_REQUIRE_BACKENDS';
export const SKIP_LOG_ENV = 'SIGLIP2_SKIP_LOG';

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

/**
 * Skips the current suite or test because `backend` is unavailable (`reason` says why), or throws when that backend
 * is required. Call it from `before`/`it` with mocha's `this`.
 */
export function skipUnavailable(ctx: Mocha.Context, backend: string, reason: string): never {
  const suite = ctx.currentTest?.fullTitle() ?? ctx.test?.parent?.fullTitle() ?? '(unknown suite)';
  if (requiredBackends().has(backend)) {
    throw new Error(
      `backend '${backend}' is required (${REQUIRE_BACKENDS_ENV}) but unavailable in '${suite}': ${reason}`,
    );
  }
  console.log(`      skipping (${backend} unavailable): ${reason}`);
  const log = process.env[SKIP_LOG_ENV];
  if (log !== undefined && log !== '') {
    appendFileSync(log, `${JSON.stringify({ suite, backend, reason })}\n`);
  }
  ctx.skip();
}
