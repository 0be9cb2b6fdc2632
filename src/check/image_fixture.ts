/**
 * Runs an image-preprocessing fixture folder (`cases.json`, `images/`, `outputs.safetensors`, optional
 * `inputs.safetensors`, processor configs in sub-folders) and compares every stored output.
 *
 * Outputs are named `<image>.<processor>.<field>`: `<processor>` is `fixres<N>` (fixed resolution N x N,
 * `SiglipImageProcessor`) or `naflex<N>` (NaFlex with N max patches), optionally suffixed `_rgb`;
 * `<field>` is `pixel_values`, `pixel_attention_mask` or `spatial_shapes`. Input `<image>.decoded_uint8`
 * (`[H, W, 3]` uint8, the reference decoder's pixels) is also run, to test preprocessing without the decoder.
 *
 * Tolerances, in uint8 levels (one level = rescale_factor / std after normalisation): losslessly coded images
 * (PNG, ...) and `decoded_uint8` inputs must be within 1 level everywhere; JPEGs (decoder differences) must
 * have a mean difference under 0.5 level. Masks and spatial shapes must match exactly.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { type LoadedTensor, readSafetensors } from '../io/safetensors.js';
import { loadImageNode } from '../processors/decode_node.js';
import {
  type PreprocessorConfigJson,
  type RgbImage,
  Siglip2ImageProcessor,
  SiglipImageProcessor,
  isNaFlexConfig,
} from '../processors/image.js';
import type { Comparison } from './compare.js';

interface ImageCasesJson {
  images?: { file: string }[];
}

/** True when `dir` looks like an image-preprocessing fixture folder. */
export function isImagePreprocessingFixture(dir: string): boolean {
  return (
    existsSync(join(dir, 'cases.json')) &&
    existsSync(join(dir, 'outputs.safetensors')) &&
    existsSync(join(dir, 'images'))
  );
}

function readConfigs(dir: string): PreprocessorConfigJson[] {
  const found: PreprocessorConfigJson[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name, 'preprocessor_config.json');
    if (entry.isDirectory() && existsSync(p)) {
      found.push(JSON.parse(readFileSync(p, 'utf8')) as PreprocessorConfigJson);
    }
  }
  const top = join(dir, 'preprocessor_config.json');
  if (existsSync(top)) found.push(JSON.parse(readFileSync(top, 'utf8')) as PreprocessorConfigJson);
  return found;
}

/** The processor for a variant name such as `fixres256`, `fixres256_rgb`, `naflex64`. */
function processorFor(
  variant: string,
  configs: PreprocessorConfigJson[],
): { kind: 'fixed'; proc: SiglipImageProcessor } | { kind: 'naflex'; proc: Siglip2ImageProcessor } {
  const m = /^(fixres|naflex)(\d+)/.exec(variant);
  if (!m)
    throw new Error(`unknown processor variant '${variant}' (expected fixres<N> or naflex<N>)`);
  const n = Number(m[2]);
  if (m[1] === 'naflex') {
    const cfg = configs.find(isNaFlexConfig) ?? {};
    return { kind: 'naflex', proc: new Siglip2ImageProcessor(cfg, n) };
  }
  const fixed = configs.filter((c) => !isNaFlexConfig(c));
  const cfg = fixed.find((c) => c.size?.height === n && c.size?.width === n) ?? fixed[0] ?? {};
  return {
    kind: 'fixed',
    proc: new SiglipImageProcessor({ ...cfg, size: { height: n, width: n } }),
  };
}

/** Max and mean difference in uint8 levels, plus the max absolute difference. */
function levelStats(
  a: Float32Array,
  e: Float32Array,
  level: number,
): { maxAbs: number; maxLv: number; meanLv: number } {
  let maxAbs = 0;
  let sum = 0;
  for (let i = 0; i < e.length; i++) {
    const d = Math.abs(a[i] - e[i]);
    if (!(d <= maxAbs)) maxAbs = d; // NaN propagates
    sum += d;
  }
  return { maxAbs, maxLv: maxAbs / level, meanLv: sum / e.length / level };
}

function intRows(name: string, a: Int32Array, e: LoadedTensor): Comparison {
  let diff = 0;
  const same = a.length === e.data.length;
  if (same) for (let i = 0; i < a.length; i++) diff = Math.max(diff, Math.abs(a[i] - e.data[i]));
  return {
    name,
    shape: e.shape,
    maxAbs: same ? diff : Infinity,
    maxRel: 0,
    ok: same && diff === 0,
    tolerance: { atol: 0, rtol: 0 },
    note: same ? undefined : `length ${a.length} != expected ${e.data.length}`,
  };
}

export async function checkImagePreprocessingFixture(dir: string): Promise<Comparison[]> {
  if (!isImagePreprocessingFixture(dir)) {
    throw new Error(
      `${dir}: not an image preprocessing fixture (needs cases.json, images/, outputs.safetensors)`,
    );
  }
  const cases = JSON.parse(readFileSync(join(dir, 'cases.json'), 'utf8')) as ImageCasesJson;
  const outputs = await readSafetensors(join(dir, 'outputs.safetensors'));
  const inputsPath = join(dir, 'inputs.safetensors');
  const inputs = existsSync(inputsPath)
    ? await readSafetensors(inputsPath)
    : new Map<string, LoadedTensor>();
  const configs = readConfigs(dir);

  const files = new Map<string, string>();
  for (const img of cases.images ?? []) files.set(basename(img.file, extname(img.file)), img.file);
  if (files.size === 0) {
    for (const f of readdirSync(join(dir, 'images')))
      files.set(basename(f, extname(f)), join('images', f));
  }

  // (image, variant) pairs present in the outputs
  const pairs: [string, string][] = [];
  for (const name of outputs.keys()) {
    const m = /^(.+)\.([^.]+)\.pixel_values$/.exec(name);
    if (m) pairs.push([m[1], m[2]]);
  }
  const decoded = new Map<string, RgbImage>();
  const rows: Comparison[] = [];
  for (const [img, variant] of pairs) {
    const file = files.get(img);
    if (!file) {
      rows.push({
        name: `${img}.${variant}`,
        shape: [],
        maxAbs: Infinity,
        maxRel: Infinity,
        ok: false,
        tolerance: { atol: 0, rtol: 0 },
        note: `no image file for '${img}' in cases.json or images/`,
      });
      continue;
    }
    const sources: { label: string; lossless: boolean; load: () => Promise<RgbImage> }[] = [
      {
        label: `${img}.${variant}`,
        lossless: !/\.jpe?g$/i.test(file),
        load: async () => {
          if (!decoded.has(img)) decoded.set(img, await loadImageNode(join(dir, file), file));
          return decoded.get(img)!;
        },
      },
    ];
    const raw = inputs.get(`${img}.decoded_uint8`);
    if (raw && raw.shape.length === 3 && raw.shape[2] === 3) {
      sources.push({
        label: `${img}(decoded_uint8).${variant}`,
        lossless: true,
        load: async () => ({
          data: raw.data instanceof Uint8Array ? raw.data : Uint8Array.from(raw.data),
          height: raw.shape[0],
          width: raw.shape[1],
          source: `${img}.decoded_uint8`,
        }),
      });
    }
    const expected = outputs.get(`${img}.${variant}.pixel_values`)!;
    const { kind, proc } = processorFor(variant, configs);
    const level = proc.settings.rescaleFactor / Math.min(...proc.settings.std);
    for (const src of sources) {
      const image = await src.load();
      const tol = { atol: src.lossless ? level * (1 + 1e-3) : Infinity, rtol: 0 };
      let pixelValues: Float32Array;
      let shape: number[];
      const extra: Comparison[] = [];
      if (kind === 'fixed') {
        const r = proc.preprocess([image]);
        pixelValues = r.pixelValues;
        shape = r.shape;
      } else {
        const r = proc.preprocess([image]);
        pixelValues = r.pixelValues;
        shape = r.shape;
        const mask = outputs.get(`${img}.${variant}.pixel_attention_mask`);
        const shapes = outputs.get(`${img}.${variant}.spatial_shapes`);
        if (mask)
          extra.push(intRows(`${src.label}.pixel_attention_mask`, r.pixelAttentionMask, mask));
        if (shapes) extra.push(intRows(`${src.label}.spatial_shapes`, r.spatialShapes, shapes));
      }
      const shapeOk =
        shape.length === expected.shape.length && shape.every((d, i) => d === expected.shape[i]);
      if (!shapeOk) {
        rows.push({
          name: `${src.label}.pixel_values`,
          shape: expected.shape,
          maxAbs: Infinity,
          maxRel: Infinity,
          ok: false,
          tolerance: tol,
          note: `shape [${shape.join(', ')}] != expected [${expected.shape.join(', ')}]`,
        });
      } else {
        const st = levelStats(pixelValues, expected.data as Float32Array, level);
        const ok = src.lossless ? st.maxLv <= 1 + 1e-3 : st.meanLv < 0.5;
        rows.push({
          name: `${src.label}.pixel_values`,
          shape: expected.shape,
          maxAbs: st.maxAbs,
          maxRel: 0,
          ok,
          tolerance: tol,
          note:
            `max ${st.maxLv.toFixed(2)} / mean ${st.meanLv.toFixed(4)} uint8 levels` +
            (src.lossless ? ' (limit: max 1)' : ' (JPEG, limit: mean 0.5)'),
        });
      }
      rows.push(...extra);
    }
  }
  if (pairs.length === 0)
    throw new Error(`${dir}: outputs.safetensors has no '<image>.<processor>.pixel_values'`);
  return rows;
}
