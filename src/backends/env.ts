/** Small runtime probes shared by the backend modules. */

/** True when running under Node.js (not in a browser or a web worker). */
export function isNode(): boolean {
  return typeof process !== 'undefined' && typeof process.versions?.node === 'string';
}

/** Reads an environment variable in Node; undefined in browsers. */
export function readEnv(name: string): string | undefined {
  return isNode() ? process.env[name] : undefined;
}

/**
 * Imports a module chosen at run time. The specifier is a variable so that bundlers and tsc leave optional,
 * possibly absent packages (tfjs-node, webgpu) alone.
 */
export function dynamicImport(specifier: string): Promise<unknown> {
  return import(/* @vite-ignore */ specifier) as Promise<unknown>;
}
