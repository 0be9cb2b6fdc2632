/**
 * Text side of SigLIP / SigLIP 2: a `tokenizer.json` tokenizer (via `@huggingface/tokenizers`) plus the
 * SigLIP conventions: special tokens from the tokenizer's post-processor (SigLIP 2 / Gemma: no BOS, EOS
 * appended), truncation to `maxLength` keeping the trailing special tokens, right padding with the pad id to
 * exactly `maxLength`, no attention mask.
 */
import { Tokenizer } from '@huggingface/tokenizers';

/** Options fixed when the tokenizer is built. */
export interface SiglipTokenizerOptions {
  /** Sequence length every row is truncated/padded to. Default: `model_max_length` when it is a sane
   * number (<= 4096), otherwise 64 (the text tower's positions for every SigLIP / SigLIP 2 checkpoint). */
  maxLength?: number;
  /** Lowercase texts before tokenizing (default true: SigLIP 2 and SigLIP were trained on lowercased text). */
  lowercase?: boolean;
  /** SigLIP 1 (`SiglipTokenizer`) text canonicalisation: remove ASCII punctuation, collapse whitespace, trim.
   * Default: on when `tokenizer_config.json` names `SiglipTokenizer`, off otherwise. */
  canonicalize?: boolean;
  /** Called once per text that had to be cut to `maxLength` (index into the batch, tokens before cutting). */
  onTruncate?: (index: number, text: string, numTokens: number) => void;
}

/** Per-call overrides. */
export interface EncodeOptions {
  lowercase?: boolean;
  maxLength?: number;
  canonicalize?: boolean;
}

export interface EncodedTexts {
  /** Row-major `[n, maxLength]` token ids. */
  inputIds: Int32Array;
  shape: [number, number];
  /** `truncated[i]`: text i had more than `maxLength` tokens (with its special tokens) and was cut. */
  truncated: boolean[];
  /** Tokens of each text before padding (after truncation). */
  lengths: number[];
}

/** The JSON object in a `tokenizer_config.json` (only the fields read here are typed). */
export interface TokenizerConfigJson {
  tokenizer_class?: string;
  pad_token?: string | { content: string } | null;
  eos_token?: string | { content: string } | null;
  model_max_length?: number;
  do_lower_case?: boolean;
  [key: string]: unknown;
}

const ASCII_PUNCTUATION = /[!"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~]/g;

/** SigLIP 1's `canonicalize_text`: drop `string.punctuation`, collapse whitespace runs to one space, trim. */
export function canonicalizeText(text: string): string {
  return text.replace(ASCII_PUNCTUATION, '').replace(/\s+/g, ' ').trim();
}

function tokenContent(t: TokenizerConfigJson['pad_token']): string | undefined {
  if (t === null || t === undefined) return undefined;
  return typeof t === 'string' ? t : t.content;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export class SiglipTokenizer {
  readonly maxLength: number;
  readonly lowercase: boolean;
  readonly canonicalize: boolean;
  readonly padId: number;
  readonly eosId: number | undefined;
  private readonly onTruncate?: SiglipTokenizerOptions['onTruncate'];

  private constructor(
    readonly tokenizer: Tokenizer,
    private readonly config: TokenizerConfigJson,
    padId: number,
    eosId: number | undefined,
    opts: SiglipTokenizerOptions,
  ) {
    const mml = config.model_max_length;
    const fromConfig = typeof mml === 'number' && mml > 0 && mml <= 4096 ? mml : undefined;
    this.maxLength = opts.maxLength ?? fromConfig ?? 64;
    if (!Number.isInteger(this.maxLength) || this.maxLength < 1) {
      throw new Error(
        `SiglipTokenizer: maxLength must be a positive integer, got ${this.maxLength}`,
      );
    }
    this.lowercase = opts.lowercase ?? true;
    this.canonicalize = opts.canonicalize ?? config.tokenizer_class === 'SiglipTokenizer';
    this.padId = padId;
    this.eosId = eosId;
    this.onTruncate = opts.onTruncate;
  }

  /**
   * Build from parsed `tokenizer.json` and `tokenizer_config.json` objects.
   * Pad id: `pad_token` of the config, else `padding.pad_id` of tokenizer.json, else 0.
   */
  static fromJSON(
    tokenizerJson: unknown,
    tokenizerConfig: TokenizerConfigJson = {},
    opts: SiglipTokenizerOptions = {},
  ): SiglipTokenizer {
    if (!isObject(tokenizerJson) || !isObject(tokenizerJson.model)) {
      throw new Error(
        'SiglipTokenizer: tokenizer.json has no "model" object (not a tokenizers JSON file)',
      );
    }
    const tok = new Tokenizer(tokenizerJson, tokenizerConfig);
    const padName = tokenContent(tokenizerConfig.pad_token);
    let padId: number | undefined;
    if (padName !== undefined) {
      padId = tok.token_to_id(padName);
      if (padId === undefined) {
        throw new Error(`SiglipTokenizer: pad_token "${padName}" is not in the vocabulary`);
      }
    } else if (
      isObject(tokenizerJson.padding) &&
      typeof tokenizerJson.padding.pad_id === 'number'
    ) {
      padId = tokenizerJson.padding.pad_id;
    }
    const eosName = tokenContent(tokenizerConfig.eos_token);
    const eosId = eosName !== undefined ? tok.token_to_id(eosName) : undefined;
    return new SiglipTokenizer(tok, tokenizerConfig, padId ?? 0, eosId, opts);
  }

  /** Read `tokenizer.json` (required) and `tokenizer_config.json` (optional) from a checkpoint folder. */
  static async fromFolder(
    dir: string,
    opts: SiglipTokenizerOptions = {},
  ): Promise<SiglipTokenizer> {
    // Node only, imported here so that the browser bundle does not pull node:fs in.
    const { stat } = await import('node:fs/promises');
    const { join } = await import('node:path');
    const tjPath = join(dir, 'tokenizer.json');
    const exists = async (p: string) =>
      stat(p).then(
        (s) => s.isFile(),
        () => false,
      );
    if (!(await exists(tjPath))) {
      const spiece =
        (await exists(join(dir, 'spiece.model'))) || (await exists(join(dir, 'tokenizer.model')));
      throw new Error(
        `SiglipTokenizer: no tokenizer.json in ${dir}` +
          (spiece
            ? ' (only a SentencePiece .model file is there; convert it once with Python transformers: ' +
              'AutoTokenizer.from_pretrained(dir, use_fast=True).save_pretrained(dir))'
            : ''),
      );
    }
    const tokenizerJson = await readJson(tjPath);
    const cfgPath = join(dir, 'tokenizer_config.json');
    const config = (await exists(cfgPath))
      ? ((await readJson(cfgPath)) as TokenizerConfigJson)
      : {};
    if (!isObject(config)) throw new Error(`SiglipTokenizer: ${cfgPath} is not a JSON object`);
    const stPath = join(dir, 'special_tokens_map.json');
    if (
      (await exists(stPath)) &&
      (config.pad_token === undefined || config.eos_token === undefined)
    ) {
      const st = (await readJson(stPath)) as TokenizerConfigJson;
      config.pad_token ??= st.pad_token;
      config.eos_token ??= st.eos_token;
    }
    return SiglipTokenizer.fromJSON(tokenizerJson, config, opts);
  }

  /** A tokenizer sharing this one's vocabulary (no reloading) with other options. */
  withOptions(opts: SiglipTokenizerOptions): SiglipTokenizer {
    return new SiglipTokenizer(this.tokenizer, this.config, this.padId, this.eosId, {
      maxLength: this.maxLength,
      lowercase: this.lowercase,
      canonicalize: this.canonicalize,
      onTruncate: this.onTruncate,
      ...opts,
    });
  }

  /** Text as it is fed to the tokenizer model (lowercasing / canonicalisation applied). */
  prepareText(text: string, opts: EncodeOptions = {}): string {
    let t = text;
    if (opts.canonicalize ?? this.canonicalize) t = canonicalizeText(t);
    if (opts.lowercase ?? this.lowercase) t = t.toLowerCase();
    return t;
  }

  /** Token ids of one text with special tokens, truncated to `maxLength` (unpadded). */
  encodeOne(
    text: string,
    opts: EncodeOptions = {},
  ): { ids: number[]; truncated: boolean; numTokens: number } {
    const maxLength = opts.maxLength ?? this.maxLength;
    const t = this.prepareText(text, opts);
    const full = this.tokenizer.encode(t).ids;
    if (full.length <= maxLength) return { ids: full, truncated: false, numTokens: full.length };
    // Truncate the text's own tokens, keep the special tokens the post-processor put around them
    // (as HF does: truncation happens before the template is applied).
    const plain: number[] = this.tokenizer.encode(t, { add_special_tokens: false }).ids;
    const numSpecial = full.length - plain.length;
    let prefix = -1;
    for (let k = 0; k <= numSpecial && prefix < 0; k++) {
      if (plain.every((id: number, i: number) => full[k + i] === id)) prefix = k;
    }
    if (prefix < 0 || numSpecial >= maxLength) {
      throw new Error(
        `SiglipTokenizer: cannot truncate to maxLength ${maxLength} (special tokens: ${numSpecial})`,
      );
    }
    const keep = maxLength - numSpecial;
    const ids = [
      ...full.slice(0, prefix),
      ...plain.slice(0, keep),
      ...full.slice(prefix + plain.length),
    ];
    return { ids, truncated: true, numTokens: full.length };
  }

  /** Encode a batch into `[n, maxLength]` ids, right-padded with the pad id. */
  encode(texts: string[], opts: EncodeOptions = {}): EncodedTexts {
    if (!Array.isArray(texts))
      throw new Error('SiglipTokenizer.encode: texts must be an array of strings');
    const maxLength = opts.maxLength ?? this.maxLength;
    if (!Number.isInteger(maxLength) || maxLength < 1) {
      throw new Error(
        `SiglipTokenizer.encode: maxLength must be a positive integer, got ${maxLength}`,
      );
    }
    const n = texts.length;
    const inputIds = new Int32Array(n * maxLength).fill(this.padId);
    const truncated: boolean[] = [];
    const lengths: number[] = [];
    texts.forEach((text, i) => {
      if (typeof text !== 'string') {
        throw new Error(`SiglipTokenizer.encode: texts[${i}] is ${typeof text}, not a string`);
      }
      const r = this.encodeOne(text, { ...opts, maxLength });
      inputIds.set(r.ids, i * maxLength);
      truncated.push(r.truncated);
      lengths.push(r.ids.length);
      if (r.truncated) this.onTruncate?.(i, text, r.numTokens);
    });
    return { inputIds, shape: [n, maxLength], truncated, lengths };
  }
}

async function readJson(path: string): Promise<unknown> {
  const { readFile } = await import('node:fs/promises');
  const text = await readFile(path, 'utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new Error(`cannot parse ${path} as JSON: ${(e as Error).message}`, { cause: e });
  }
}
