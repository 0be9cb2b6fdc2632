/**
 * Entry of the browser test bundle (built by `npm run build:browser` with esbuild into dist/test/browser/bundle/):
 * TF.js with the webgpu and wasm backends, selected through the project's useBackend().
 */
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../src/backends/index.js';

const api = { tf, useBackend };
export type BrowserTestApi = typeof api;
(globalThis as { siglip2Test?: BrowserTestApi }).siglip2Test = api;
