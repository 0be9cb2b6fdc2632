import * as tf from '@tensorflow/tfjs';

/**
 * `x @ kernel + bias` over the last axis of a tensor of any rank. The kernel is `[in, out]` (the transpose of a
 * PyTorch `nn.Linear` weight). Flattening to 2-D lets every backend use its fused matMul + bias kernel.
 */
export function linear(x: tf.Tensor, kernel: tf.Tensor2D, bias?: tf.Tensor1D): tf.Tensor {
  return tf.tidy(() => {
    const inDim = x.shape[x.shape.length - 1];
    const lead = x.shape.slice(0, -1);
    const flat = x.reshape([-1, inDim]) as tf.Tensor2D;
    const y = tf.fused.matMul({ a: flat, b: kernel, bias });
    return y.reshape([...lead, kernel.shape[1]]);
  });
}
