import * as tf from '@tensorflow/tfjs';
import type { SiglipModel } from '../../src/model/siglip_model.js';
import { type PairBatch, pairLoss } from '../../src/train/forward.js';
import { lossAndGrads } from '../../src/train/grads.js';
import { type Param, paramKey } from '../../src/train/params.js';
import { seededRandom } from '../../src/util/random.js';

/**
 * Checks the gradient of the pair loss against the loss itself: for each parameter, the directional derivative
 * along a seeded random unit direction (`sum(g * v)`) must equal the central difference
 * `(L(p + eps v) - L(p - eps v)) / 2 eps` within `rtol |g v| + atol`. Returns one line per disagreement.
 */
export async function centralDifferenceMismatches(
  model: SiglipModel,
  batch: PairBatch,
  params: Param[],
  opts: { eps?: number; rtol?: number; atol?: number; seed?: number } = {},
): Promise<string[]> {
  const eps = opts.eps ?? 3e-2;
  const rtol = opts.rtol ?? 1e-2;
  const atol = opts.atol ?? 2e-5;
  const lossAt = () => tf.tidy(() => pairLoss(model, batch, false).dataSync()[0]);
  const { loss, grads } = await lossAndGrads(model, batch, params);
  const rand = seededRandom(opts.seed ?? 11);
  const rows: string[] = [];
  for (const p of params) {
    const g = grads.get(paramKey(p));
    if (!g) {
      rows.push(`${paramKey(p)}: no gradient`);
      continue;
    }
    const theta = p.variable.read().clone();
    const dir = tf.tidy(() => {
      const r = tf.tensor(
        Float32Array.from({ length: theta.size }, () => rand() - 0.5),
        theta.shape,
      );
      return r.div(r.norm());
    });
    const analytic = tf.tidy(() => g.mul(dir).sum().dataSync()[0]);
    p.variable.write(tf.tidy(() => theta.add(dir.mul(eps))));
    const up = lossAt();
    p.variable.write(tf.tidy(() => theta.sub(dir.mul(eps))));
    const down = lossAt();
    p.variable.write(theta);
    const numeric = (up - down) / (2 * eps);
    if (!(Math.abs(numeric - analytic) <= rtol * Math.abs(analytic) + atol)) {
      rows.push(`${paramKey(p)}: analytic ${analytic}, numeric ${numeric}`);
    }
    tf.dispose([theta, dir]);
  }
  tf.dispose([loss, ...grads.values()]);
  return rows;
}
