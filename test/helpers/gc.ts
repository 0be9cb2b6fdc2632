import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose_gc');
/** V8's full garbage collection, for tests that measure retained memory (garbage awaiting collection is not kept). */
export const gc = runInNewContext('gc') as () => void;
