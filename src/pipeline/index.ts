// The zero-shot pipeline (browser-safe). Node: file paths, the hub and the conversion cache are in ./node.js.
export * from './pipeline.js';
