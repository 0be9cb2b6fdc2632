/**
 * The name and contract of the fused AdamW update kernel a backend may register (the `native` backend does); the
 * optimizer (optimizer.ts) runs it when the active backend has it, else the per-op TF.js update.
 *
 * Inputs `param`, `grad`, `m`, `v` (float32, one shape). Attributes `lr`, `beta1`, `beta2`, `epsilon`, `bc1`
 * (`1 - beta1^t`), `bc2` (`1 - beta2^t`), `decay` (weight decay, 0 for none). Outputs three new tensors:
 * the parameter, `m` and `v` after the step, exactly as `AdamW.applyGradients` computes them; inputs are not written.
 */
export const ADAMW_KERNEL = 'SiglipAdamWUpdate';

export interface AdamWKernelAttrs {
  lr: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  bc1: number;
  bc2: number;
  decay: number;
}
