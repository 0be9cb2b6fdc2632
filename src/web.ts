// Browser entry of siglip2-tfjs (bundled by `npm run build:web` into dist/web/siglip2.js): the layers, the model,
// the converted-model loader over HTTP / IndexedDB, the processors and the pipeline, plus TF.js itself so that a
// page uses the same TF.js instance as the library. Node-only modules (file access, safetensors checkpoints,
// sharp) are not part of it.
import * as tf from '@tensorflow/tfjs';
import './internals/tfjs.js';

export { tf };
export * from './layers/index.js';
export * from './model/config.js';
export * from './model/weight_map.js';
export * from './model/siglip_model.js';
export * from './model/vision_model.js';
export * from './model/naflex_vision_model.js';
export * from './model/text_model.js';
export * from './model/scores_model.js';
export * from './model/tower_outputs.js';
export * from './model/binding_check.js';
export * from './loader/index.js';
export * from './backends/index.js';
export * from './processors/tokenizer.js';
export * from './processors/image.js';
export * from './processors/resize.js';
export * from './processors/decode_browser.js';
export * from './processors/load.js';
export * from './pipeline/index.js';
// Fine-tuning (the training step reads nothing synchronously, so it runs on webgpu and wasm in the page). Saving
// training checkpoints and exporting to a Hugging Face folder write files: Node only.
export * from './train/loss.js';
export * from './train/forward.js';
export * from './train/params.js';
export * from './train/grads.js';
export * from './train/optimizer.js';
export * from './train/data.js';
export * from './train/evaluate.js';
export * from './train/freeze.js';
export * from './train/trainer.js';
export * from './train/lora.js';
export * from './train/recompute.js';
