import * as tf from '@tensorflow/tfjs';

/**
 * `log(sigmoid(x)) = -softplus(-x)`, differentiable. (`tf.logSigmoid` in TF.js 4.22 cannot be differentiated: its
 * custom gradient reads a tensor it has already disposed.)
 */
export function logSigmoid(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.softplus(x.neg()).neg());
}

/**
 * The SigLIP sigmoid loss on a square `[n, n]` matrix of `logits_per_text` (rows: texts, columns: images):
 * labels are +1 on the diagonal (matching pairs) and -1 elsewhere, and
 * `loss = mean over texts of ( -sum over images log_sigmoid(label * logit) )`, as Hugging Face's
 * `SiglipModel(return_loss=True)` computes it.
 *
 * `targets` (optional, `[n, n]`, 1 for a matching pair and 0 otherwise) replaces the identity, e.g. when a batch
 * holds several captions of one image. The result is a scalar; the caller disposes it.
 */
export function sigmoidLoss(logitsPerText: tf.Tensor, targets?: tf.Tensor): tf.Scalar {
  const [n, m] = logitsPerText.shape;
  if (logitsPerText.rank !== 2 || (targets === undefined && n !== m)) {
    throw new Error(
      `sigmoidLoss: logitsPerText must be a square [texts, images] matrix (as many texts as images), ` +
        `got [${logitsPerText.shape.join(', ')}]`,
    );
  }
  if (targets && targets.shape.join(',') !== logitsPerText.shape.join(',')) {
    throw new Error(
      `sigmoidLoss: targets must have the shape of logitsPerText [${logitsPerText.shape.join(', ')}], ` +
        `got [${targets.shape.join(', ')}]`,
    );
  }
  return tf.tidy(() => {
    const labels = targets
      ? targets.toFloat().mul(2).sub(1)
      : tf
          .eye(n as number)
          .mul(2)
          .sub(1);
    const perText = logSigmoid(labels.mul(logitsPerText)).sum(1).neg();
    return perText.mean() as tf.Scalar;
  });
}

/**
 * The same loss with the `(yTrue, yPred)` signature of `model.compile({loss})` and custom training loops:
 * `yPred` is `logits_per_text` `[n, n]`, `yTrue` the `[n, n]` 0/1 matrix of matching pairs (the identity for
 * ordinary image-text pairs).
 */
export function siglipLoss(yTrue: tf.Tensor, yPred: tf.Tensor): tf.Scalar {
  return sigmoidLoss(yPred, yTrue);
}
