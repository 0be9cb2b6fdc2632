import * as tf from '@tensorflow/tfjs';
import { SiglipLayer, type Shape, type SiglipLayerArgs, firstShape } from './base.js';

export interface TextEmbeddingsArgs extends SiglipLayerArgs {
  hiddenSize: number;
  vocabSize: number;
  maxPositionEmbeddings: number;
}

/**
 * `SiglipTextEmbeddings`: token embedding plus learned position embedding (positions 0..L-1).
 * Input: token ids `[B, L]` (int32), L <= maxPositionEmbeddings. Output `[B, L, D]`.
 */
export class SiglipTextEmbeddings extends SiglipLayer {
  static readonly className = 'SiglipTextEmbeddings';
  readonly hiddenSize: number;
  readonly vocabSize: number;
  readonly maxPositionEmbeddings: number;
  tokenEmbedding!: tf.LayerVariable;
  positionEmbedding!: tf.LayerVariable;

  constructor(args: TextEmbeddingsArgs) {
    super(args);
    this.hiddenSize = args.hiddenSize;
    this.vocabSize = args.vocabSize;
    this.maxPositionEmbeddings = args.maxPositionEmbeddings;
  }

  override build(_inputShape: Shape | Shape[]): void {
    this.tokenEmbedding = this.addParam(
      'token_embedding/embeddings',
      [this.vocabSize, this.hiddenSize],
      'embedding',
    );
    this.positionEmbedding = this.addParam(
      'position_embedding/embeddings',
      [this.maxPositionEmbeddings, this.hiddenSize],
      'embedding',
    );
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const ids = Array.isArray(inputs) ? inputs[0] : inputs;
    const length = ids.shape[1];
    if (ids.rank !== 2 || length == null || length > this.maxPositionEmbeddings) {
      throw new Error(
        `${this.name}: input_ids must be [batch, length] with length <= ${this.maxPositionEmbeddings}, ` +
          `got [${ids.shape.join(', ')}]`,
      );
    }
    return tf.tidy(() => {
      const tokens = tf.gather(this.tokenEmbedding.read(), ids.toInt());
      const positions = this.positionEmbedding.read().slice([0, 0], [length, this.hiddenSize]);
      return tokens.add(positions);
    });
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const shape = firstShape(inputShape);
    return [shape[0], shape[1], this.hiddenSize];
  }

  override getConfig(): tf.serialization.ConfigDict {
    return this.withBaseConfig({
      hiddenSize: this.hiddenSize,
      vocabSize: this.vocabSize,
      maxPositionEmbeddings: this.maxPositionEmbeddings,
    });
  }
}
tf.serialization.registerClass(SiglipTextEmbeddings);
