// Fine-tuning SigLIP / SigLIP 2 in TF.js: loss, gradients, optimizer, trainer, LoRA, linear probe, checkpoints
// and export back to a Hugging Face folder.
export * from './loss.js';
export * from './forward.js';
export * from './params.js';
export * from './grads.js';
export * from './optimizer.js';
export * from './data.js';
export * from './evaluate.js';
export * from './freeze.js';
export * from './trainer.js';
export * from './lora.js';
export * from './export_hf.js';
export * from './checkpoint.js';
export { registerWasmTrainingKernels } from './wasm_kernels.js';
export * from './probe.js';
export * from './recompute.js';
