import * as tf from '@tensorflow/tfjs';
import { SiglipLayer, type Shape, type SiglipLayerArgs, firstShape } from './base.js';
import { linear } from './kernels/linear.js';

export interface VisionEmbeddingsArgs extends SiglipLayerArgs {
  hiddenSize: number;
  patchSize: number;
  imageSize: number;
  numChannels?: number;
}

/**
 * `SiglipVisionEmbeddings`: Conv2d(C, D, kernel=p, stride=p) patch embedding plus a learned position table.
 * Input: pixel values `[B, C, H, W]` (channels first, as the Hugging Face processor gives them).
 * Output: `[B, (H/p)*(W/p), D]`.
 *
 * Weights: `patch_embedding/kernel` `[p, p, C, D]` (TF.js conv layout), `patch_embedding/bias` `[D]`,
 * `position_embedding/embeddings` `[numPatches, D]`. The convolution has stride = kernel, so it is computed as
 * one matMul over patches flattened in (py, px, c) order: exact and much faster than a conv on every backend.
 */
export class SiglipVisionEmbeddings extends SiglipLayer {
  static readonly className = 'SiglipVisionEmbeddings';
  readonly hiddenSize: number;
  readonly patchSize: number;
  readonly imageSize: number;
  readonly numChannels: number;
  readonly numPatches: number;
  patchKernel!: tf.LayerVariable;
  patchBias!: tf.LayerVariable;
  positionEmbedding!: tf.LayerVariable;

  constructor(args: VisionEmbeddingsArgs) {
    super(args);
    this.hiddenSize = args.hiddenSize;
    this.patchSize = args.patchSize;
    this.imageSize = args.imageSize;
    this.numChannels = args.numChannels ?? 3;
    if (this.imageSize % this.patchSize !== 0) {
      throw new Error(
        `${this.name}: image size ${this.imageSize} is not a multiple of the patch size ${this.patchSize}`,
      );
    }
    this.numPatches = (this.imageSize / this.patchSize) ** 2;
  }

  override build(_inputShape: Shape | Shape[]): void {
    const p = this.patchSize;
    this.patchKernel = this.addParam(
      'patch_embedding/kernel',
      [p, p, this.numChannels, this.hiddenSize],
      'kernel',
    );
    this.patchBias = this.addParam('patch_embedding/bias', [this.hiddenSize], 'zeros');
    this.positionEmbedding = this.addParam(
      'position_embedding/embeddings',
      [this.numPatches, this.hiddenSize],
      'embedding',
    );
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const pixels = Array.isArray(inputs) ? inputs[0] : inputs;
    const [b, c, h, w] = pixels.shape;
    if (
      pixels.rank !== 4 ||
      c !== this.numChannels ||
      h !== this.imageSize ||
      w !== this.imageSize
    ) {
      throw new Error(
        `${this.name}: pixel_values must be [batch, ${this.numChannels}, ${this.imageSize}, ${this.imageSize}], ` +
          `got [${pixels.shape.join(', ')}]`,
      );
    }
    return tf.tidy(() => {
      const p = this.patchSize;
      const nh = h / p;
      const nw = w / p;
      // [B, C, H, W] -> [B, H, W, C] -> [B*nh, p, nw, p*C] -> [B*nh, nw, p, p*C] -> [B, N, p*p*C]
      const patches = pixels
        .transpose([0, 2, 3, 1])
        .reshape([b * nh, p, nw, p * c])
        .transpose([0, 2, 1, 3])
        .reshape([b, nh * nw, p * p * c]);
      const kernel = this.patchKernel.read().reshape([p * p * c, this.hiddenSize]) as tf.Tensor2D;
      const embeds = linear(patches, kernel, this.patchBias.read() as tf.Tensor1D);
      return embeds.add(this.positionEmbedding.read());
    });
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const shape = firstShape(inputShape);
    return [shape[0], this.numPatches, this.hiddenSize];
  }

  override getConfig(): tf.serialization.ConfigDict {
    return this.withBaseConfig({
      hiddenSize: this.hiddenSize,
      patchSize: this.patchSize,
      imageSize: this.imageSize,
      numChannels: this.numChannels,
    });
  }
}
tf.serialization.registerClass(SiglipVisionEmbeddings);
