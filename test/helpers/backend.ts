import * as tf from '@tensorflow/tfjs';

/** Switches TF.js to a backend for a block of tests (wasm is imported on first use). */
export async function useTestBackend(name: 'cpu' | 'wasm'): Promise<void> {
  if (name === 'wasm') await import('@tensorflow/tfjs-backend-wasm');
  tf.env().set('PROD', true);
  if (!(await tf.setBackend(name))) throw new Error(`backend ${name} failed to start`);
  await tf.ready();
}
