#!/usr/bin/env node
import { buildProgram } from './program.js';

buildProgram()
  .parseAsync(process.argv)
  .then(
    () => process.exit(process.exitCode ?? 0),
    (e: unknown) => {
      console.error(`siglip2: ${e instanceof Error ? e.message : String(e)}`);
      process.exit(2);
    },
  );
