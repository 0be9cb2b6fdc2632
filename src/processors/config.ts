import { join } from 'node:path';
import type { PreprocessorConfigJson } from './image.js';

/** Read `<dir>/preprocessor_config.json` (Node). */
export async function loadPreprocessorConfig(dir: string): Promise<PreprocessorConfigJson> {
  const path = join(dir, 'preprocessor_config.json');
  const { readFile } = await import('node:fs/promises');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new Error(`${path}: cannot read preprocessor config (${(e as Error).message})`, {
      cause: e,
    });
  }
  let cfg: unknown;
  try {
    cfg = JSON.parse(text);
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${(e as Error).message})`, { cause: e });
  }
  if (typeof cfg !== 'object' || cfg === null || Array.isArray(cfg))
    throw new Error(`${path}: not a JSON object`);
  return cfg as PreprocessorConfigJson;
}
