// siglip2-tfjs: SigLIP / SigLIP 2 on TensorFlow.js. Importing this module registers the layer library with
// tf.serialization, so `tf.loadLayersModel` can read converted models, and (in Node) lets `loadSiglip` and
// `tf.loadLayersModel` read converted models from file:// URLs and paths. It checks the TF.js version first
// (src/internals/tfjs.ts) and keeps TF.js's cpu backend from printing its tfjs-node banner.
import './internals/tfjs.js';
export { TESTED_TFJS_VERSION, ALLOW_UNTESTED_TFJS_ENV } from './internals/tfjs.js';
export * from './layers/index.js';
export * from './model/index.js';
export * from './io/safetensors.js';
export * from './check/index.js';
export * from './loader/index.js';
export { fileSource, fileModelHandler, registerFileRouter } from './loader/node.js';
export * from './train/index.js';
export * from './io/safetensors_writer.js';
export * from './pipeline/index.js';
export * from './pipeline/node.js';
export * from './backends/index.js';
export * from './processors/index.js';
