export * from './tokenizer.js';
export * from './resize.js';
export * from './image.js';
export * from './decode_node.js';
export * from './decode_browser.js';
export * from './load.js';
export * from './config.js';
