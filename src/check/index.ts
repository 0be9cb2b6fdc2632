// Importing this module registers every fixture kind `siglip2 check` knows.
import './model_fixture.js';
import './loss_grad_fixture.js';

export * from './compare.js';
export * from './fixture.js';
export {
  checkModelFixture,
  registerExtraOutputs,
  type ExtraOutputProvider,
} from './model_fixture.js';
export {
  checkLossGradFixture,
  compareGradient,
  gradTolerance,
  zeroParts,
  zeroAtol,
  type ZeroPart,
} from './loss_grad_fixture.js';
