import {
  type HiddenAct,
  SUPPORTED_ACTIVATIONS,
  isHiddenAct,
} from '../layers/kernels/activations.js';
import { ConfigError } from '../util/errors.js';

/** Largest value of any size field (TF.js shapes are int32). */
const MAX_SIZE = 2 ** 31 - 1;
/** Largest num_hidden_layers accepted (real SigLIP models have at most a few dozen). */
export const MAX_LAYERS = 1024;

/** The file a `where` string names (`config.json: text_config` -> `config.json`). */
function fileOf(where: string): string {
  const i = where.lastIndexOf(': ');
  return i < 0 ? where : where.slice(0, i);
}

/** Text tower configuration (`SiglipTextConfig` / `Siglip2TextConfig`), with the reference defaults filled in. */
export interface SiglipTextConfig {
  modelType: 'siglip_text_model' | 'siglip2_text_model';
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  maxPositionEmbeddings: number;
  hiddenAct: HiddenAct;
  layerNormEps: number;
  projectionSize: number;
  padTokenId: number;
  bosTokenId: number;
  eosTokenId: number;
}

interface VisionCommon {
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  numChannels: number;
  patchSize: number;
  hiddenAct: HiddenAct;
  layerNormEps: number;
  visionUseHead: boolean;
}

/** Fixed-resolution vision tower (`SiglipVisionConfig`): Conv2d patches, one position row per patch. */
export interface SiglipVisionConfig extends VisionCommon {
  modelType: 'siglip_vision_model';
  imageSize: number;
}

/** NaFlex vision tower (`Siglip2VisionConfig`): Linear patches, a sqrt(numPatches)^2 position grid resized per image. */
export interface Siglip2VisionConfig extends VisionCommon {
  modelType: 'siglip2_vision_model';
  numPatches: number;
}

export type VisionConfig = SiglipVisionConfig | Siglip2VisionConfig;

/** A whole checkpoint's configuration. A tower is absent for vision-only or text-only checkpoints. */
export interface SiglipConfig {
  modelType: 'siglip' | 'siglip2' | 'siglip_vision_model' | 'siglip_text_model';
  textConfig?: SiglipTextConfig;
  visionConfig?: VisionConfig;
}

type Json = Record<string, unknown>;

class ConfigReader {
  constructor(
    private readonly json: Json,
    private readonly where: string,
  ) {}

  private fail(key: string, message: string): ConfigError {
    return new ConfigError(`${this.where}.${key} ${message}`, fileOf(this.where), key);
  }

  int(key: string, fallback: number, min = 1, max = MAX_SIZE): number {
    const v = this.json[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      throw this.fail(key, `must be an integer in [${min}, ${max}], got ${JSON.stringify(v)}`);
    }
    return v;
  }

  positive(key: string, fallback: number): number {
    const v = this.json[key] ?? fallback;
    if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) {
      throw this.fail(key, `must be a positive number, got ${JSON.stringify(v)}`);
    }
    return v;
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.json[key] ?? fallback;
    if (typeof v !== 'boolean') {
      throw this.fail(key, `must be true or false, got ${JSON.stringify(v)}`);
    }
    return v;
  }

  act(key: string): HiddenAct {
    const v = this.json[key] ?? 'gelu_pytorch_tanh';
    if (typeof v !== 'string' || !isHiddenAct(v)) {
      throw this.fail(
        key,
        `${JSON.stringify(v)} is not supported (supported: ${SUPPORTED_ACTIVATIONS.join(', ')})`,
      );
    }
    return v;
  }
}

function checkHeads(where: string, hidden: number, heads: number): void {
  if (hidden % heads !== 0) {
    throw new ConfigError(
      `${where}: hidden_size ${hidden} is not divisible by num_attention_heads ${heads}`,
      fileOf(where),
      'num_attention_heads',
    );
  }
}

function asObject(v: unknown, where: string): Json {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) {
    throw new ConfigError(`${where} must be an object`, fileOf(where));
  }
  return v as Json;
}

export function parseTextConfig(
  json: Json,
  where: string,
  modelType: SiglipTextConfig['modelType'],
): SiglipTextConfig {
  const r = new ConfigReader(json, where);
  const hiddenSize = r.int('hidden_size', 768);
  const numAttentionHeads = r.int('num_attention_heads', 12);
  checkHeads(where, hiddenSize, numAttentionHeads);
  return {
    modelType,
    vocabSize: r.int('vocab_size', 32000),
    hiddenSize,
    intermediateSize: r.int('intermediate_size', 3072),
    numHiddenLayers: r.int('num_hidden_layers', 12, 1, MAX_LAYERS),
    numAttentionHeads,
    maxPositionEmbeddings: r.int('max_position_embeddings', 64),
    hiddenAct: r.act('hidden_act'),
    layerNormEps: r.positive('layer_norm_eps', 1e-6),
    projectionSize:
      json.projection_size == null ? hiddenSize : r.int('projection_size', hiddenSize),
    padTokenId: r.int('pad_token_id', 1, 0),
    bosTokenId: r.int('bos_token_id', 49406, 0),
    eosTokenId: r.int('eos_token_id', 49407, 0),
  };
}

function parseVisionConfig(
  json: Json,
  where: string,
  modelType: VisionConfig['modelType'],
): VisionConfig {
  const r = new ConfigReader(json, where);
  const hiddenSize = r.int('hidden_size', 768);
  const numAttentionHeads = r.int('num_attention_heads', 12);
  checkHeads(where, hiddenSize, numAttentionHeads);
  const common: VisionCommon = {
    hiddenSize,
    intermediateSize: r.int('intermediate_size', 3072),
    numHiddenLayers: r.int('num_hidden_layers', 12, 1, MAX_LAYERS),
    numAttentionHeads,
    numChannels: r.int('num_channels', 3),
    patchSize: r.int('patch_size', 16),
    hiddenAct: r.act('hidden_act'),
    layerNormEps: r.positive('layer_norm_eps', 1e-6),
    visionUseHead: r.bool('vision_use_head', true),
  };
  if (modelType === 'siglip2_vision_model') {
    const numPatches = r.int('num_patches', 256);
    const side = Math.round(Math.sqrt(numPatches));
    if (side * side !== numPatches) {
      throw new ConfigError(
        `${where}.num_patches must be a perfect square (the position grid), got ${numPatches}`,
        fileOf(where),
        'num_patches',
      );
    }
    return { ...common, modelType, numPatches };
  }
  const imageSize = r.int('image_size', 224);
  if (imageSize % common.patchSize !== 0) {
    throw new ConfigError(
      `${where}: image_size ${imageSize} is not a multiple of patch_size ${common.patchSize}`,
      fileOf(where),
      'image_size',
    );
  }
  return { ...common, modelType, imageSize };
}

const TOP_LEVEL_TYPES = ['siglip', 'siglip2', 'siglip_vision_model', 'siglip_text_model'] as const;

/**
 * Parses a Hugging Face `config.json` (already JSON-decoded). Fields the file leaves out take the reference
 * class defaults, as `from_pretrained` does. `source` names the file in error messages.
 */
export function parseConfig(json: unknown, source = 'config.json'): SiglipConfig {
  const root = asObject(json, source);
  const modelType = root.model_type;
  if (
    typeof modelType !== 'string' ||
    !(TOP_LEVEL_TYPES as readonly string[]).includes(modelType)
  ) {
    throw new ConfigError(
      `${source}: model_type ${JSON.stringify(modelType)} is not supported (supported: ${TOP_LEVEL_TYPES.join(', ')})`,
      source,
      'model_type',
    );
  }
  const mt = modelType as SiglipConfig['modelType'];
  if (mt === 'siglip_vision_model') {
    return { modelType: mt, visionConfig: parseVisionConfig(root, source, 'siglip_vision_model') };
  }
  if (mt === 'siglip_text_model') {
    return { modelType: mt, textConfig: parseTextConfig(root, source, 'siglip_text_model') };
  }
  const v2 = mt === 'siglip2';
  return {
    modelType: mt,
    textConfig: parseTextConfig(
      asObject(root.text_config, `${source}: text_config`),
      `${source}: text_config`,
      v2 ? 'siglip2_text_model' : 'siglip_text_model',
    ),
    visionConfig: parseVisionConfig(
      asObject(root.vision_config, `${source}: vision_config`),
      `${source}: vision_config`,
      v2 ? 'siglip2_vision_model' : 'siglip_vision_model',
    ),
  };
}
