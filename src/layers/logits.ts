import * as tf from '@tensorflow/tfjs';
import { SiglipLayer, type Shape, type SiglipLayerArgs } from './base.js';

/**
 * The dual model's scores. Inputs `[imageEmbeds, textEmbeds]` (both L2-normalised), outputs
 * `[logits_per_image, logits_per_text]` with `logits_per_text = text @ image^T * exp(logit_scale) + logit_bias`.
 * Weights `logit_scale` `[1]` and `logit_bias` `[1]`, initialised to log(10) and -10 as in SigLIP.
 */
export class SiglipLogits extends SiglipLayer {
  static readonly className = 'SiglipLogits';
  logitScale!: tf.LayerVariable;
  logitBias!: tf.LayerVariable;

  constructor(args: SiglipLayerArgs = {}) {
    super(args);
  }

  override build(_inputShape: Shape | Shape[]): void {
    this.logitScale = this.addWeight(
      'logit_scale',
      [1],
      'float32',
      tf.initializers.constant({ value: Math.log(10) }),
    );
    this.logitBias = this.addWeight(
      'logit_bias',
      [1],
      'float32',
      tf.initializers.constant({ value: -10 }),
    );
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor[] {
    if (!Array.isArray(inputs) || inputs.length !== 2) {
      throw new Error(`${this.name}: expected [imageEmbeds, textEmbeds]`);
    }
    return tf.tidy(() => {
      const [image, text] = inputs;
      const perText = tf
        .matMul(text, image, false, true)
        .mul(this.logitScale.read().exp())
        .add(this.logitBias.read());
      return [perText.transpose(), perText];
    });
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape[] {
    const [image, text] = inputShape as Shape[];
    return [
      [image[0], text[0]],
      [text[0], image[0]],
    ];
  }

  override getConfig(): tf.serialization.ConfigDict {
    return this.withBaseConfig({});
  }
}
tf.serialization.registerClass(SiglipLogits);
