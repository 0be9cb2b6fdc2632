/** What the model benchmarks run and how much arithmetic it is: shared by `npm run bench` and `npm run bench:peer`. */

/** `--model` names and the full-size configs (under the fixtures' `full_size_configs/`) they stand for. */
export const MODELS: Record<string, string> = {
  so400m: 'siglip2-so400m-patch16-256',
  base: 'siglip2-base-patch16-224',
};

/** Multiply-add FLOPs (x2) of a transformer stack over `n` tokens: projections, attention, MLP. */
export function encoderGflop(d: number, inter: number, layers: number, n: number): number {
  const perLayer = 8 * d * d * n + 4 * n * n * d + 4 * d * inter * n;
  return (perLayer * layers) / 1e9;
}
