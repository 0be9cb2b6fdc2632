import type { SiglipConfig, SiglipTextConfig, VisionConfig } from './config.js';

/** How a checkpoint tensor becomes a TF.js weight. */
export type WeightTransform =
  | 'none'
  /** `nn.Linear` weight `[out, in]` -> kernel `[in, out]` (also the stacked MHA in_proj). */
  | 'transpose'
  /** Conv2d weight `[out, in, kh, kw]` -> `[kh, kw, in, out]`. */
  | 'conv';

export type Tower = 'vision' | 'text' | 'scores';

/** One checkpoint tensor and the TF.js weight it fills. */
export interface WeightEntry {
  /** Hugging Face state_dict key, e.g. `vision_model.encoder.layers.0.self_attn.q_proj.weight`. */
  hfName: string;
  hfShape: number[];
  tower: Tower;
  /** TF.js weight name inside the tower's LayersModel, e.g. `encoder/layers.0/self_attn/q_proj/kernel`. */
  tfName: string;
  tfShape: number[];
  transform: WeightTransform;
}

function linear(
  out: WeightEntry[],
  tower: Tower,
  hf: string,
  tf: string,
  inDim: number,
  outDim: number,
): void {
  out.push({
    hfName: `${hf}.weight`,
    hfShape: [outDim, inDim],
    tower,
    tfName: `${tf}/kernel`,
    tfShape: [inDim, outDim],
    transform: 'transpose',
  });
  out.push({
    hfName: `${hf}.bias`,
    hfShape: [outDim],
    tower,
    tfName: `${tf}/bias`,
    tfShape: [outDim],
    transform: 'none',
  });
}

function norm(out: WeightEntry[], tower: Tower, hf: string, tf: string, dim: number): void {
  out.push({
    hfName: `${hf}.weight`,
    hfShape: [dim],
    tower,
    tfName: `${tf}/gamma`,
    tfShape: [dim],
    transform: 'none',
  });
  out.push({
    hfName: `${hf}.bias`,
    hfShape: [dim],
    tower,
    tfName: `${tf}/beta`,
    tfShape: [dim],
    transform: 'none',
  });
}

function plain(out: WeightEntry[], tower: Tower, hf: string, tf: string, shape: number[]): void {
  out.push({ hfName: hf, hfShape: shape, tower, tfName: tf, tfShape: shape, transform: 'none' });
}

function mlp(
  out: WeightEntry[],
  tower: Tower,
  hf: string,
  tf: string,
  d: number,
  inter: number,
): void {
  linear(out, tower, `${hf}.fc1`, `${tf}/fc1`, d, inter);
  linear(out, tower, `${hf}.fc2`, `${tf}/fc2`, inter, d);
}

function encoder(
  out: WeightEntry[],
  tower: Tower,
  prefix: string,
  d: number,
  inter: number,
  layers: number,
): void {
  for (let i = 0; i < layers; i++) {
    const hf = `${prefix}.encoder.layers.${i}`;
    const tf = `encoder/layers.${i}`;
    for (const p of ['k_proj', 'v_proj', 'q_proj', 'out_proj']) {
      linear(out, tower, `${hf}.self_attn.${p}`, `${tf}/self_attn/${p}`, d, d);
    }
    norm(out, tower, `${hf}.layer_norm1`, `${tf}/layer_norm1`, d);
    mlp(out, tower, `${hf}.mlp`, `${tf}/mlp`, d, inter);
    norm(out, tower, `${hf}.layer_norm2`, `${tf}/layer_norm2`, d);
  }
}

/** Every checkpoint tensor of the vision tower, in state_dict order. */
function visionWeights(c: VisionConfig): WeightEntry[] {
  const out: WeightEntry[] = [];
  const d = c.hiddenSize;
  const p = c.patchSize;
  const t: Tower = 'vision';
  if (c.modelType === 'siglip_vision_model') {
    out.push({
      hfName: 'vision_model.embeddings.patch_embedding.weight',
      hfShape: [d, c.numChannels, p, p],
      tower: t,
      tfName: 'embeddings/patch_embedding/kernel',
      tfShape: [p, p, c.numChannels, d],
      transform: 'conv',
    });
    plain(
      out,
      t,
      'vision_model.embeddings.patch_embedding.bias',
      'embeddings/patch_embedding/bias',
      [d],
    );
    plain(
      out,
      t,
      'vision_model.embeddings.position_embedding.weight',
      'embeddings/position_embedding/embeddings',
      [(c.imageSize / p) ** 2, d],
    );
  } else {
    linear(
      out,
      t,
      'vision_model.embeddings.patch_embedding',
      'embeddings/patch_embedding',
      c.numChannels * p * p,
      d,
    );
    plain(
      out,
      t,
      'vision_model.embeddings.position_embedding.weight',
      'embeddings/position_embedding/embeddings',
      [c.numPatches, d],
    );
  }
  encoder(out, t, 'vision_model', d, c.intermediateSize, c.numHiddenLayers);
  norm(out, t, 'vision_model.post_layernorm', 'post_layernorm', d);
  if (c.visionUseHead) {
    plain(out, t, 'vision_model.head.probe', 'head/probe', [1, 1, d]);
    out.push({
      hfName: 'vision_model.head.attention.in_proj_weight',
      hfShape: [3 * d, d],
      tower: t,
      tfName: 'head/attention/in_proj/kernel',
      tfShape: [d, 3 * d],
      transform: 'transpose',
    });
    plain(out, t, 'vision_model.head.attention.in_proj_bias', 'head/attention/in_proj/bias', [
      3 * d,
    ]);
    linear(out, t, 'vision_model.head.attention.out_proj', 'head/attention/out_proj', d, d);
    norm(out, t, 'vision_model.head.layernorm', 'head/layernorm', d);
    mlp(out, t, 'vision_model.head.mlp', 'head/mlp', d, c.intermediateSize);
  }
  return out;
}

/** Every checkpoint tensor of the text tower, in state_dict order. */
function textWeights(c: SiglipTextConfig): WeightEntry[] {
  const out: WeightEntry[] = [];
  const d = c.hiddenSize;
  const t: Tower = 'text';
  plain(
    out,
    t,
    'text_model.embeddings.token_embedding.weight',
    'embeddings/token_embedding/embeddings',
    [c.vocabSize, d],
  );
  plain(
    out,
    t,
    'text_model.embeddings.position_embedding.weight',
    'embeddings/position_embedding/embeddings',
    [c.maxPositionEmbeddings, d],
  );
  encoder(out, t, 'text_model', d, c.intermediateSize, c.numHiddenLayers);
  norm(out, t, 'text_model.final_layer_norm', 'final_layer_norm', d);
  linear(out, t, 'text_model.head', 'head', d, c.projectionSize);
  return out;
}

/** The dual model's two scalars. */
function scoreWeights(): WeightEntry[] {
  return [
    {
      hfName: 'logit_scale',
      hfShape: [1],
      tower: 'scores',
      tfName: 'logits/logit_scale',
      tfShape: [1],
      transform: 'none',
    },
    {
      hfName: 'logit_bias',
      hfShape: [1],
      tower: 'scores',
      tfName: 'logits/logit_bias',
      tfShape: [1],
      transform: 'none',
    },
  ];
}

/** Every tensor a checkpoint of this configuration holds, with the TF.js weight each one fills. */
export function checkpointWeights(config: SiglipConfig): WeightEntry[] {
  const out: WeightEntry[] = [];
  if (config.textConfig) out.push(...textWeights(config.textConfig));
  if (config.visionConfig) out.push(...visionWeights(config.visionConfig));
  if (config.textConfig && config.visionConfig) out.push(...scoreWeights());
  return out;
}

/** Total parameter count implied by a configuration (no model needs to be built). */
export function countParameters(config: SiglipConfig): number {
  return checkpointWeights(config).reduce((n, e) => n + e.hfShape.reduce((a, b) => a * b, 1), 0);
}
