// The SigLIP layer library. Importing this module registers every layer with tf.serialization, so
// `tf.loadLayersModel` can rebuild saved models.
export { SiglipLayer, type SiglipLayerArgs, type WeightInit, type Shape } from './base.js';
export { Linear, type LinearArgs, type LinearAdapter } from './linear.js';
export { LayerNorm, type LayerNormArgs } from './layer_norm.js';
export { SiglipAttention, type AttentionArgs } from './attention.js';
export { SiglipMLP, type MlpArgs } from './mlp.js';
export { SiglipEncoderLayer, type EncoderLayerArgs } from './encoder_layer.js';
export { SiglipEncoder, type EncoderArgs } from './encoder.js';
export { SiglipVisionEmbeddings, type VisionEmbeddingsArgs } from './vision_embeddings.js';
export {
  Siglip2VisionEmbeddings,
  type Siglip2VisionEmbeddingsArgs,
  positionResizeMatrix,
} from './siglip2_vision_embeddings.js';
export {
  SiglipTextEmbeddings,
  type TextEmbeddingsArgs,
  type TokenTableMode,
  TOKEN_TABLE_ENV,
  TOKEN_TABLE_MODES,
  TOKEN_TABLE_WEIGHT,
  setTokenTableMode,
  tokenTableMode,
} from './text_embeddings.js';
export { SiglipMultiheadAttentionPoolingHead, type PoolingHeadArgs } from './pooling_head.js';
export { SiglipTextHead, type TextHeadArgs } from './text_head.js';
export { SiglipLogits } from './logits.js';
export { L2Normalize } from './l2_normalize.js';
export { scaledDotProductAttention, MASKED_SCORE } from './kernels/attention.js';
export { mlp, type MlpWeights } from './kernels/mlp.js';
export { linear, setWasmPackCacheLimit, type LowRankUpdate } from './kernels/linear.js';
export { ensureWasmKernels, wasmKernelsReplaced } from './kernels/wasm_kernels.js';
export { antialiasBilinearWeights, antialiasBilinearMatrix } from './kernels/antialias_resize.js';
export { layerNorm } from './kernels/layer_norm.js';
export {
  activation,
  geluTanh,
  parseHiddenAct,
  type HiddenAct,
  SUPPORTED_ACTIVATIONS,
} from './kernels/activations.js';
