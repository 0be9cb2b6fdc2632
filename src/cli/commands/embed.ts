import { promises as fsp } from 'node:fs';
import { extname } from 'node:path';
import type { Command } from 'commander';
import { encodeSafetensors } from '../../io/safetensors_format.js';
import { DEFAULT_MODEL } from '../../pipeline/node.js';
import {
  batchSizeOf,
  openPipeline,
  pipelineOptions,
  type PipelineCliOptions,
} from '../pipeline_options.js';

interface EmbedCliOptions extends PipelineCliOptions {
  text?: boolean;
  patches?: boolean;
  out?: string;
}

/** What `siglip2 embed` writes: one row per input, in the order given. */
export interface EmbeddingsFile {
  kind: 'image' | 'text' | 'patches';
  /** The model as given (--model), or the default. */
  model: string;
  /** File names (images) or the texts. */
  inputs: string[];
  /** `[n, d]` (image / text embeddings, each row of unit length) or `[n, patches, d]` (patch features). */
  dims: number[];
  data: Float32Array;
  /** --patches: per image, the patch grid [rows, cols]; its rows*cols first patches are real. */
  grids?: [number, number][];
}

/** A NumPy `.npy` (format 1.0) file of little-endian float32 in C order. */
function encodeNpy(data: Float32Array, shape: number[]): Uint8Array {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0], 0); // \x93NUMPY v1.0
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 10 + header.length);
  return out;
}

function rows(data: Float32Array, dims: number[]): unknown[] {
  const [n, ...rest] = dims;
  const per = rest.reduce((a, b) => a * b, 1);
  return Array.from({ length: n }, (_, i) => {
    const row = Array.from(data.subarray(i * per, (i + 1) * per));
    if (rest.length === 1) return row;
    const [p, d] = rest;
    return Array.from({ length: p }, (_, k) => row.slice(k * d, (k + 1) * d));
  });
}

/** The JSON form (`--out x.json`, or stdout): `{kind, model, inputs, dims, embeddings: number[][]}`. */
function embeddingsJson(f: EmbeddingsFile): string {
  return JSON.stringify({
    kind: f.kind,
    model: f.model,
    inputs: f.inputs,
    dims: f.dims,
    ...(f.grids ? { grids: f.grids } : {}),
    embeddings: rows(f.data, f.dims),
  });
}

/** Encodes by extension: .json, .npy (the array only), .safetensors (tensor `embeddings` + metadata). */
function encodeEmbeddings(f: EmbeddingsFile, path: string): Uint8Array {
  const ext = extname(path).toLowerCase();
  if (ext === '.json') return new TextEncoder().encode(embeddingsJson(f) + '\n');
  if (ext === '.npy') return encodeNpy(f.data, f.dims);
  if (ext === '.safetensors') {
    const meta: Record<string, string> = {
      format: 'pt',
      kind: f.kind,
      model: f.model,
      inputs: JSON.stringify(f.inputs),
    };
    if (f.grids) meta.grids = JSON.stringify(f.grids);
    return encodeSafetensors([{ name: 'embeddings', shape: f.dims, data: f.data }], meta);
  }
  throw new Error(
    `--out ${path}: unknown format ${JSON.stringify(ext || '(no extension)')}; use .json, .npy or .safetensors`,
  );
}

export function registerEmbed(program: Command): void {
  const cmd = program
    .command('embed')
    .description(
      'L2-normalised embeddings of images (or of texts with --text), or dense patch features (--patches)',
    )
    .argument('<inputs...>', 'image files, or with --text the texts themselves')
    .option('--text', 'the inputs are texts')
    .option('--patches', 'images: write the last-layer patch features [n, patches, d] instead')
    .option(
      '--out <file>',
      'write to a file: .json, .npy (float32 [n, d]) or .safetensors (tensor "embeddings"); default: JSON on stdout',
    )
    .option('--json', 'no progress bars (the output is JSON unless --out says otherwise)');
  pipelineOptions(cmd).action(async (inputs: string[], opts: EmbedCliOptions) => {
    if (opts.text && opts.patches) throw new Error('--patches applies to images, not --text');
    // Refuse an unknown --out format before loading anything.
    if (opts.out) {
      encodeEmbeddings(
        { kind: 'text', model: '', inputs: [], dims: [0, 0], data: new Float32Array() },
        opts.out,
      );
    }
    batchSizeOf(opts);
    const example = opts.text
      ? 'siglip2 embed --text "a photo of a cat"'
      : 'siglip2 embed photo.jpg';
    const pipe = await openPipeline(opts, opts.text ? 'text' : 'vision', example);
    try {
      let file: EmbeddingsFile;
      const model = opts.model ?? (process.env.SIGLIP2_MODEL || DEFAULT_MODEL);
      if (opts.text) {
        const e = await pipe.embedTexts(inputs);
        file = { kind: 'text', model, inputs, dims: e.dims, data: e.data };
      } else if (opts.patches) {
        const p = await pipe.patchFeatures(inputs);
        file = { kind: 'patches', model, inputs, dims: p.dims, data: p.data, grids: p.grids };
      } else {
        const e = await pipe.embedImages(inputs);
        file = { kind: 'image', model, inputs, dims: e.dims, data: e.data };
      }
      if (opts.out) {
        await fsp.writeFile(opts.out, encodeEmbeddings(file, opts.out));
        console.log(`wrote ${file.kind} embeddings [${file.dims.join(', ')}] to ${opts.out}`);
      } else {
        console.log(embeddingsJson(file));
      }
    } finally {
      pipe.dispose();
    }
  });
}
