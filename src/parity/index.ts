export * from './run.js';
export * from './types.js';
export { randomInputs, readFixtureCase, type FixtureCase } from './inputs.js';
export { compareRuns, formatParity } from './report.js';
export { runInNode } from './node.js';
export { runInChromium, type BrowserBackend } from './chromium.js';
