#!/usr/bin/env node
import { Command } from 'commander';
import { registerCheck } from './commands/check.js';
import { registerClassify } from './commands/classify.js';
import { registerConvert } from './commands/convert.js';
import { registerEmbed } from './commands/embed.js';

const program = new Command();
program
  .name('siglip2')
  .description('SigLIP / SigLIP 2 vision-language encoders on TensorFlow.js')
  .showHelpAfterError();
registerCheck(program);
registerConvert(program);
registerClassify(program);
registerEmbed(program);

program.parseAsync(process.argv).then(
  () => process.exit(process.exitCode ?? 0),
  (e: unknown) => {
    console.error(`siglip2: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(2);
  },
);
