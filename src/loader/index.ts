// The converted-model loader (browser-safe; Node file access is in ./node.js).
export * from './manifest.js';
export * from './source.js';
export * from './tower.js';
export * from './load.js';
export * from './digest.js';
export type { WeightStorage } from './mapped_group.js';
export * from '../util/errors.js';
