/**
 * One tower of a full-size model with random weights on the active backend, as a function that runs one
 * inference forward pass of a fixed input: `batch` images, or 8 texts of 64 tokens. Shared by the benchmarks that
 * time the model beside something else in the same process (`bench:in-model`, `bench:peer-interleaved`).
 */
import * as tf from '@tensorflow/tfjs';
import { SiglipModel } from '../src/model/siglip_model.js';
import { disposeTowerOutputs } from '../src/model/tower_outputs.js';
import type { EncoderShape } from './addon_encoder.js';
import { fillRandom } from './random_weights.js';
import { TEXTS, TOKENS, benchImageSize, benchTokenIds, fullSizeConfig } from './workloads.js';

export interface TowerRunner {
  /** the model's folder name, e.g. siglip2-base-patch16-224 */
  dir: string;
  /** e.g. `1 image`, `8 texts x 64 tokens` */
  what: string;
  /** the encoder's sizes for this input */
  encoderShape: EncoderShape;
  /** One forward pass; resolves when its pooled output is read. */
  run(): Promise<void>;
  dispose(): void;
}

export function towerRunner(
  modelName: string,
  tower: 'vision' | 'text',
  batch: number,
): TowerRunner {
  const { dir, config } = fullSizeConfig(modelName);
  const built = SiglipModel.build(config, { weightInit: 'zeros', towers: tower });
  if (tower === 'text') {
    const t = built.text!;
    fillRandom(t.model);
    const tc = config.textConfig!;
    const input = tf.tensor2d(benchTokenIds(config), [TEXTS, TOKENS], 'int32');
    return {
      dir,
      what: `${TEXTS} texts x ${TOKENS} tokens`,
      encoderShape: {
        layers: tc.numHiddenLayers,
        hidden: tc.hiddenSize,
        intermediate: tc.intermediateSize,
        heads: tc.numAttentionHeads,
        batch: TEXTS,
        tokens: TOKENS,
      },
      run: async () => {
        const o = t.predict(input);
        await o.poolerOutput!.data();
        disposeTowerOutputs(o);
      },
      dispose: () => {
        input.dispose();
        built.dispose();
      },
    };
  }
  const v = built.vision!;
  fillRandom(v.model);
  const vc = config.visionConfig!;
  const size = benchImageSize(config);
  const input = tf.randomUniform([batch, 3, size, size], -1, 1);
  return {
    dir,
    what: `${batch} image${batch > 1 ? 's' : ''}`,
    encoderShape: {
      layers: vc.numHiddenLayers,
      hidden: vc.hiddenSize,
      intermediate: vc.intermediateSize,
      heads: vc.numAttentionHeads,
      batch,
      tokens: (size / vc.patchSize) ** 2,
    },
    run: async () => {
      const o = v.predict({ pixelValues: input });
      await o.poolerOutput!.data();
      disposeTowerOutputs(o);
    },
    dispose: () => {
      input.dispose();
      built.dispose();
    },
  };
}
