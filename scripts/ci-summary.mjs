#!/usr/bin/env node
// The closing summary of .ci/run: every skip with its reason and the tests it skipped, grouped by suite; the
// checks run outside mocha (parity, the fine-tuning demonstration); and last, alone on its line, the plain
// "N passed, N failed, N skipped" that CI reads (mocha's counts plus the extra checks).
// Usage: node scripts/ci-summary.mjs <mocha log> <skip log (JSON lines)> <checks file ("ok|fail<TAB>name" lines)>
import { existsSync, readFileSync } from 'node:fs';
import process from 'node:process';

const [mochaLog, skipLog, checksFile] = process.argv.slice(2);
const out = (line = '') => process.stdout.write(`${line}\n`);
const read = (file) => (file && existsSync(file) ? readFileSync(file, 'utf8') : '');
const lines = (text) => text.split('\n').filter((l) => l.trim() !== '');

// Colour codes stripped: mocha colours its output where it detects a CI environment.
// eslint-disable-next-line no-control-regex
const log = read(mochaLog).replace(/\x1b\[[0-9;]*m/g, '');
const count = (word) => {
  const all = [...log.matchAll(new RegExp(`^ +(\\d+) ${word}`, 'gm'))];
  return all.length ? Number(all[all.length - 1][1]) : 0;
};
const mocha = { passed: count('passing'), failed: count('failing'), skipped: count('pending') };

/** @type {{suite: string, backend?: string, reason: string, tests: string[]}[]} */
const skips = lines(read(skipLog)).map((l) => JSON.parse(l));
const bySuite = new Map();
for (const s of skips) {
  const list = bySuite.get(s.suite) ?? [];
  list.push(s);
  bySuite.set(s.suite, list);
}
const recorded = skips.reduce((n, s) => n + s.tests.length, 0);
out();
out(
  `skipped tests by suite (${mocha.skipped} skipped in mocha, ${recorded} with a recorded reason):`,
);
if (bySuite.size === 0) out('  none');
for (const [suite, list] of bySuite) {
  out(`  ${suite}`);
  for (const s of list) {
    out(`    reason${s.backend ? ` (${s.backend} unavailable)` : ''}: ${s.reason}`);
    for (const t of s.tests) out(`      - ${t}`);
  }
}
if (mocha.skipped > recorded) {
  out(
    `  ${mocha.skipped - recorded} skipped without a recorded reason (use test/helpers/require_backend.ts)`,
  );
}

const checks = lines(read(checksFile)).map((l) => {
  const [status, ...name] = l.split('\t');
  return { ok: status === 'ok', name: name.join('\t') };
});
out();
out('checks outside mocha:');
if (checks.length === 0) out('  none');
for (const c of checks) out(`  ${c.ok ? 'ok    ' : 'FAILED'} ${c.name}`);

const passed = mocha.passed + checks.filter((c) => c.ok).length;
const failed = mocha.failed + checks.filter((c) => !c.ok).length;
out(`${passed} passed, ${failed} failed, ${mocha.skipped} skipped`);
