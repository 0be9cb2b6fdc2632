// Importing this module registers every fixture kind `siglip2 check` knows.
import './model_fixture.js';
import './naflex_outputs.js';

export * from './compare.js';
export * from './fixture.js';
export {
  checkModelFixture,
  registerExtraOutputs,
  type ExtraOutputProvider,
} from './model_fixture.js';
