/** Tolerances for comparing an output with a golden one: `|a - e| <= atol + rtol * |e|` elementwise. */
export interface Tolerance {
  atol: number;
  rtol: number;
}

/** The outcome of comparing one output with its golden value. */
export interface Comparison {
  name: string;
  shape: number[];
  /** Largest `|a - e|`. */
  maxAbs: number;
  /** Largest `|a - e| / |e|` over elements with `e != 0`. */
  maxRel: number;
  /** Every element within `atol + rtol * |e|`, shapes equal, nothing NaN. */
  ok: boolean;
  tolerance: Tolerance;
  note?: string;
}

type Numeric = ArrayLike<number>;

export function compareArrays(
  name: string,
  actual: Numeric,
  expected: Numeric,
  shape: number[],
  tolerance: Tolerance,
  actualShape: number[] = shape,
): Comparison {
  const base = { name, shape, tolerance };
  if (actualShape.length !== shape.length || actualShape.some((d, i) => d !== shape[i])) {
    return {
      ...base,
      maxAbs: Infinity,
      maxRel: Infinity,
      ok: false,
      note: `shape [${actualShape.join(', ')}] != expected [${shape.join(', ')}]`,
    };
  }
  if (actual.length !== expected.length) {
    return { ...base, maxAbs: Infinity, maxRel: Infinity, ok: false, note: 'length mismatch' };
  }
  let maxAbs = 0;
  let maxRel = 0;
  let ok = true;
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i];
    const a = actual[i];
    const diff = Math.abs(a - e);
    if (Number.isNaN(diff)) {
      if (!(Number.isNaN(a) && Number.isNaN(e))) {
        ok = false;
        maxAbs = NaN;
      }
      continue;
    }
    if (diff > maxAbs) maxAbs = diff;
    if (e !== 0 && diff / Math.abs(e) > maxRel) maxRel = diff / Math.abs(e);
    if (diff > tolerance.atol + tolerance.rtol * Math.abs(e)) ok = false;
  }
  return { ...base, maxAbs, maxRel, ok };
}

/** A fixed-width table of comparisons, one line each. */
/** The failing row of a golden output this port does not compute. */
export function missingOutput(name: string, shape: number[], tolerance: Tolerance): Comparison {
  return {
    name,
    shape,
    maxAbs: NaN,
    maxRel: NaN,
    ok: false,
    tolerance,
    note: 'this port does not compute an output of that name',
  };
}

export function formatComparisons(rows: Comparison[]): string {
  const width = Math.max(6, ...rows.map((r) => r.name.length));
  const lines = [
    `${'output'.padEnd(width)}  ${'max abs'.padStart(10)}  ${'max rel'.padStart(10)}  result`,
  ];
  for (const r of rows) {
    const res = r.ok ? 'ok' : `FAIL${r.note ? ` (${r.note})` : ''}`;
    lines.push(
      `${r.name.padEnd(width)}  ${r.maxAbs.toExponential(2).padStart(10)}  ${r.maxRel.toExponential(2).padStart(10)}  ${res}`,
    );
  }
  return lines.join('\n');
}
