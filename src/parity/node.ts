/** One parity run in this Node process: select the backend, load the converted model, run the inputs. */
import * as tf from '@tensorflow/tfjs';
import { type BackendName, BackendUnavailableError, useBackend } from '../backends/index.js';
import { loadSiglip } from '../loader/load.js';
import '../loader/node.js';
import {
  disposeOutputs,
  outputsByHfName,
  type SiglipInputs,
  type SiglipOutputs,
} from '../model/siglip_model.js';
import type { BackendRun, NamedArray, ParityInputs, ParityOutputs } from './types.js';

const firstLine = (e: unknown) => (e as Error).message.split('\n')[0];

function toTensor(a: NamedArray): tf.Tensor {
  return tf.tensor(a.data, a.shape, a.data instanceof Float32Array ? 'float32' : 'int32');
}

/** The inputs as tensors (the caller disposes them). */
function inputTensors(inputs: ParityInputs): SiglipInputs {
  const out: SiglipInputs = {};
  for (const [k, v] of Object.entries(inputs) as [keyof ParityInputs, NamedArray | undefined][]) {
    if (v) out[k] = toTensor(v);
  }
  return out;
}

async function collect(out: SiglipOutputs): Promise<ParityOutputs> {
  const result: ParityOutputs = {};
  for (const [name, t] of Object.entries(outputsByHfName(out))) {
    result[name] = { data: (await t.data()) as Float32Array, shape: t.shape };
  }
  return result;
}

/** Runs `inputs` through the converted model in `modelDir` on `backend` (cpu, wasm, webgpu, tensorflow…). */
export async function runInNode(
  backend: BackendName,
  modelDir: string,
  inputs: ParityInputs,
  threads?: number,
): Promise<BackendRun> {
  const t0 = performance.now();
  const seconds = () => (performance.now() - t0) / 1000;
  let reason: string;
  try {
    reason = (await useBackend(backend, { threads })).reason;
  } catch (e) {
    const status = e instanceof BackendUnavailableError ? 'unavailable' : 'failed';
    return { backend, status, reason: `${status}: ${firstLine(e)}`, seconds: seconds() };
  }
  let model: Awaited<ReturnType<typeof loadSiglip>> | undefined;
  const tensors = inputTensors(inputs);
  let out: SiglipOutputs = {};
  try {
    model = await loadSiglip(modelDir);
    out = model.forward(tensors);
    return { backend, status: 'ok', reason, outputs: await collect(out), seconds: seconds() };
  } catch (e) {
    return {
      backend,
      status: 'failed',
      reason: `failed: ${firstLine(e)} (${reason})`,
      seconds: seconds(),
    };
  } finally {
    disposeOutputs(out);
    tf.dispose(Object.values(tensors) as tf.Tensor[]);
    model?.dispose();
  }
}
