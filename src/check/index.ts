// Importing this module registers every fixture kind `siglip2 check` knows.
import { checkImagePreprocessingFixture, isImagePreprocessingFixture } from './image_fixture.js';
import { registerFixtureKind } from './fixture.js';
import './model_fixture.js';
import './naflex_outputs.js';
import { checkTokenizerFixture, isTokenizerFixture } from './tokenizer_fixture.js';

registerFixtureKind({
  name: 'tokenizer',
  detect: (dir) => isTokenizerFixture(dir),
  run: (dir) => checkTokenizerFixture(dir),
});
registerFixtureKind({
  name: 'image_preprocessing',
  detect: (dir) => isImagePreprocessingFixture(dir),
  run: (dir) => checkImagePreprocessingFixture(dir),
});
import './loss_grad_fixture.js';

export * from './compare.js';
export * from './fixture.js';
export {
  checkModelFixture,
  registerExtraOutputs,
  type ExtraOutputProvider,
} from './model_fixture.js';
export { checkImagePreprocessingFixture, checkTokenizerFixture };
export {
  checkLossGradFixture,
  compareGradient,
  gradTolerance,
  zeroParts,
  zeroAtol,
  type ZeroPart,
} from './loss_grad_fixture.js';
