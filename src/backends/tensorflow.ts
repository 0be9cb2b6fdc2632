/**
 * The native TensorFlow backend ('tensorflow') from @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node, optional
 * peer dependencies that are used when installed. Importing either registers the 'tensorflow' backend.
 */
import { dynamicImport } from './env.js';
import { BackendUnavailableError } from './unavailable.js';

const TFJS_NODE_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const;

/** Imports a module by name; injectable so tests can simulate installed or missing packages. */
export type ModuleImporter = (specifier: string) => Promise<unknown>;

const NOT_INSTALLED = 'not installed';

/** The error thrown when neither package can be loaded; `attempts` lists each package and why it failed. */
export class TensorflowBackendUnavailable extends BackendUnavailableError {
  constructor(readonly attempts: { pkg: string; error: string }[]) {
    super(
      'tensorflow',
      attempts.every((a) => a.error === NOT_INSTALLED)
        ? 'tfjs-node(-gpu) not installed'
        : attempts.map((a) => `${a.pkg}: ${a.error}`).join('; '),
      "The 'tensorflow' backend needs @tensorflow/tfjs-node or @tensorflow/tfjs-node-gpu, and neither could be " +
        'loaded:\n' +
        attempts.map((a) => `  - ${a.pkg}: ${a.error}`).join('\n') +
        '\nInstall one of them next to this package:\n' +
        '  npm install @tensorflow/tfjs-node       (CPU; its install script downloads libtensorflow)\n' +
        '  npm install @tensorflow/tfjs-node-gpu   (NVIDIA GPU; needs CUDA 11.2 and cuDNN 8.1, and downloads ' +
        'libtensorflow at install)\n' +
        'Both need their install scripts to run (npm 11: allow them in allowScripts). ' +
        "Or use useBackend('wasm') / useBackend('webgpu').",
    );
    this.name = 'TensorflowBackendUnavailable';
  }
}

function describe(e: unknown): string {
  const err = e as { code?: string; message?: string };
  if (err?.code === 'ERR_MODULE_NOT_FOUND' || err?.code === 'MODULE_NOT_FOUND')
    return NOT_INSTALLED;
  return (err?.message ?? String(e)).split('\n')[0];
}

/**
 * Loads tfjs-node-gpu, else tfjs-node, and returns the package that registered the 'tensorflow' backend.
 * Throws TensorflowBackendUnavailable naming what to install otherwise.
 */
export async function loadTensorflowBackend(
  importer: ModuleImporter = dynamicImport,
): Promise<string> {
  const attempts: { pkg: string; error: string }[] = [];
  for (const pkg of TFJS_NODE_PACKAGES) {
    try {
      await importer(pkg);
      return pkg;
    } catch (e) {
      attempts.push({ pkg, error: describe(e) });
    }
  }
  throw new TensorflowBackendUnavailable(attempts);
}
