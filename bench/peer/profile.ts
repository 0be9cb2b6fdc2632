/**
 * onnxruntime's own per-node profile (the session option `enableProfiling`), summed by operator: the peer's side of
 * `npm run bench -- --profile`. onnxruntime writes the profile as a JSON trace when the session is released.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';

interface TraceEvent {
  cat: string;
  name: string;
  dur: number;
  args?: { op_name?: string };
}

/** The newest trace onnxruntime wrote under `prefix` (its file names are `<prefix>_<date>.json`). */
export function newestProfile(prefix: string): string {
  const dir = dirname(prefix);
  const stem = prefix.slice(dir.length + 1);
  const files = readdirSync(dir)
    .filter((f) => f.startsWith(`${stem}_`) && f.endsWith('.json'))
    .map((f) => join(dir, f))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  if (files.length === 0)
    throw new Error(`bench:peer: onnxruntime wrote no profile under ${prefix}_*.json`);
  return files[0];
}

/** Prints the kernel time of each operator per run (`runs`: every session.run the trace covers). */
export function printOrtProfile(file: string, runs: number, top = 12): void {
  const events = JSON.parse(readFileSync(file, 'utf8')) as TraceEvent[];
  const byOp = new Map<string, { us: number; calls: number }>();
  let total = 0;
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
    const op = e.args?.op_name ?? e.name;
    const s = byOp.get(op) ?? { us: 0, calls: 0 };
    s.us += e.dur;
    s.calls++;
    byOp.set(op, s);
    total += e.dur;
  }
  console.log(
    `  onnxruntime's profile (${file}), ${(total / runs / 1000).toFixed(0)} ms in kernels per run:`,
  );
  for (const [op, s] of [...byOp].sort((a, b) => b[1].us - a[1].us).slice(0, top)) {
    console.log(
      `    ${op.padEnd(24)} ${(s.us / runs / 1000).toFixed(1).padStart(7)} ms  ${((100 * s.us) / total).toFixed(1).padStart(5)} %  ${(s.calls / runs).toFixed(0).padStart(4)} calls per run`,
    );
  }
}
