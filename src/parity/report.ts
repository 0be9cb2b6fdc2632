/** Parity comparisons (every pair of runs, every run against the golden outputs) and the text report. */
import { compareArrays, type Tolerance } from '../check/compare.js';
import { HF_OUTPUT_NAMES } from '../model/siglip_model.js';
import type { BackendRun, ParityOutputs, ParityReport, ParityRow } from './types.js';

/** Every output of every pair of runs, and of every run against the golden outputs. */
export function compareRuns(
  runs: BackendRun[],
  golden: ParityOutputs | undefined,
  tolerance: Tolerance,
): ParityRow[] {
  const rows: ParityRow[] = [];
  const ran = runs.filter((r) => r.outputs);
  const refs: { name: string; outputs: ParityOutputs }[] = [
    ...(golden ? [{ name: 'fixture', outputs: golden }] : []),
    ...ran.map((r) => ({ name: r.backend, outputs: r.outputs! })),
  ];
  for (let i = 0; i < ran.length; i++) {
    for (const ref of refs) {
      if (ref.name !== 'fixture' && ran.findIndex((r) => r.backend === ref.name) >= i) continue;
      for (const name of HF_OUTPUT_NAMES) {
        const a = ran[i].outputs![name];
        const b = ref.outputs[name];
        if (!a || !b) continue;
        rows.push({
          output: name,
          a: ran[i].backend,
          b: ref.name,
          comparison: compareArrays(name, a.data, b.data, b.shape, tolerance, a.shape),
        });
      }
    }
  }
  return rows;
}

function fmt(x: number): string {
  return Number.isFinite(x) ? x.toExponential(1) : String(x);
}

/** The report as text: the runs, then one table per pair (max abs / max rel per output), then the verdict. */
export function formatParity(report: ParityReport): string {
  const lines: string[] = [];
  lines.push(`model: ${report.model}`);
  lines.push(`inputs: ${report.inputs}`);
  lines.push(`tolerance: atol ${report.tolerance.atol}, rtol ${report.tolerance.rtol}`);
  for (const r of report.runs) {
    lines.push(
      `  ${r.backend.padEnd(16)} ${r.status.padEnd(11)} ${r.outputs ? `${r.seconds.toFixed(1)} s` : '-'}  ${r.reason}`,
    );
  }
  const pairs = [...new Set(report.rows.map((r) => `${r.a} vs ${r.b}`))];
  const outputs = [...new Set(report.rows.map((r) => r.output))];
  const width = Math.max(...pairs.map((p) => p.length), 'max abs / max rel'.length);
  if (pairs.length) {
    lines.push('');
    lines.push(
      `${'max abs / max rel'.padEnd(width)}  ${outputs.map((o) => o.padEnd(19)).join(' ')}`,
    );
  }
  for (const p of pairs) {
    const cells = outputs.map((o) => {
      const row = report.rows.find((r) => `${r.a} vs ${r.b}` === p && r.output === o);
      if (!row) return ''.padEnd(19);
      const c = row.comparison;
      return `${fmt(c.maxAbs)}/${fmt(c.maxRel)}${c.ok ? '' : '!'}`.padEnd(19);
    });
    lines.push(`${p.padEnd(width)}  ${cells.join(' ')}`);
  }
  const bad = report.rows.filter((r) => !r.comparison.ok);
  const failed = report.runs.filter((r) => r.status === 'failed');
  const problems = [
    bad.length
      ? `${bad.length} of ${report.rows.length} comparisons out of tolerance (marked !)`
      : '',
    failed.length ? `failed: ${failed.map((r) => r.backend).join(', ')}` : '',
    report.unavailable.length ? `unavailable: ${report.unavailable.join(', ')}` : '',
  ].filter((s) => s);
  lines.push('');
  if (report.ok) {
    lines.push(
      `all ${report.rows.length} comparisons within tolerance` +
        (report.unavailable.length
          ? ` (unavailable, allowed by --allow-missing: ${report.unavailable.join(', ')})`
          : ''),
    );
  } else {
    lines.push(`parity failed: ${problems.join('; ')}`);
  }
  return lines.join('\n');
}
