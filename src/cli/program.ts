import { Command } from 'commander';
import { registerCheck } from './commands/check.js';
import { registerClassify } from './commands/classify.js';
import { registerEmbed } from './commands/embed.js';
import { registerEvaluate } from './commands/evaluate.js';
import { registerFinetune } from './commands/finetune.js';
import { registerConvert } from './commands/convert.js';
import { registerParity } from './commands/parity.js';
import { registerServeDemo } from './commands/serve_demo.js';

/** The `siglip2` command line program with every command registered. */
export function buildProgram(): Command {
  const program = new Command();
  program
    .name('siglip2')
    .description('SigLIP / SigLIP 2 vision-language encoders on TensorFlow.js')
    .showHelpAfterError();
  registerCheck(program);
  registerConvert(program);
  registerClassify(program);
  registerEmbed(program);
  registerParity(program);
  registerServeDemo(program);
  registerFinetune(program);
  registerEvaluate(program);
  return program;
}
