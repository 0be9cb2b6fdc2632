/**
 * Runs a tokenizer fixture folder: `tokenizer.json` (+ `tokenizer_config.json`), `inputs.json`
 * (`{"strings": [...]}`) and `outputs.safetensors` with `input_ids` `[n, maxLength]`. Ids must match exactly.
 * The folder's `cases.json` may say whether the reference lowercased (`settings.lowercasing_applied_by_tokenizer`)
 * and the max length (`settings.max_length`); otherwise lowercasing is off and the length comes from the ids.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensors } from '../io/safetensors.js';
import { SiglipTokenizer } from '../processors/tokenizer.js';
import type { Comparison } from './compare.js';

/** True when `dir` looks like a tokenizer fixture folder. */
export function isTokenizerFixture(dir: string): boolean {
  return ['tokenizer.json', 'inputs.json', 'outputs.safetensors'].every((f) =>
    existsSync(join(dir, f)),
  );
}

interface TokenizerCases {
  settings?: { max_length?: number; lowercasing_applied_by_tokenizer?: boolean };
}

export async function checkTokenizerFixture(dir: string): Promise<Comparison[]> {
  if (!isTokenizerFixture(dir)) {
    throw new Error(
      `${dir}: not a tokenizer fixture (needs tokenizer.json, inputs.json, outputs.safetensors)`,
    );
  }
  const inputs = JSON.parse(readFileSync(join(dir, 'inputs.json'), 'utf8')) as {
    strings?: unknown;
  };
  if (!Array.isArray(inputs.strings) || inputs.strings.some((s) => typeof s !== 'string')) {
    throw new Error(`${join(dir, 'inputs.json')}: expected {"strings": [string, ...]}`);
  }
  const strings = inputs.strings as string[];
  const outputs = await readSafetensors(join(dir, 'outputs.safetensors'));
  const expected = outputs.get('input_ids');
  if (!expected || expected.shape.length !== 2) {
    throw new Error(`${join(dir, 'outputs.safetensors')}: needs a 2-D tensor 'input_ids'`);
  }
  const [n, maxLength] = expected.shape;
  if (n !== strings.length) {
    throw new Error(
      `${dir}: inputs.json has ${strings.length} strings but input_ids has ${n} rows`,
    );
  }
  const casesPath = join(dir, 'cases.json');
  const cases: TokenizerCases = existsSync(casesPath)
    ? (JSON.parse(readFileSync(casesPath, 'utf8')) as TokenizerCases)
    : {};
  const lowercase = cases.settings?.lowercasing_applied_by_tokenizer ?? false;
  const tok = await SiglipTokenizer.fromFolder(dir, { maxLength, lowercase });
  const got = tok.encode(strings);
  const rows: Comparison[] = [];
  for (let i = 0; i < n; i++) {
    const a = got.inputIds.subarray(i * maxLength, (i + 1) * maxLength);
    const e = expected.data.subarray(i * maxLength, (i + 1) * maxLength);
    let mismatches = 0;
    let first = -1;
    for (let j = 0; j < maxLength; j++) {
      if (a[j] !== e[j]) {
        mismatches++;
        if (first < 0) first = j;
      }
    }
    const label = JSON.stringify(strings[i]);
    rows.push({
      name: `input_ids[${i}] ${label.length > 40 ? `${label.slice(0, 37)}...` : label}`,
      shape: [maxLength],
      maxAbs: mismatches,
      maxRel: 0,
      ok: mismatches === 0,
      tolerance: { atol: 0, rtol: 0 },
      note:
        mismatches === 0
          ? undefined
          : `${mismatches} ids differ from position ${first}: got [${[...a.subarray(first, first + 6)].join(', ')}], ` +
            `expected [${[...e.subarray(first, first + 6)].join(', ')}]`,
    });
  }
  return rows;
}
