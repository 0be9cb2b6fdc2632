import type { Command } from 'commander';
import { checkImages, DEFAULT_FOLDER_TEMPLATE, readPairData } from '../../finetune/data_source.js';
import { evaluateData } from '../../finetune/evaluation.js';
import {
  batchSizeOf,
  openPipeline,
  pipelineOptions,
  type PipelineCliOptions,
} from '../pipeline_options.js';
import { formatEval } from './finetune.js';

interface EvaluateCliOptions extends PipelineCliOptions {
  data: string;
  imageColumn: string;
  captionColumn: string;
  template: string;
}

export function registerEvaluate(program: Command): void {
  const cmd = program
    .command('evaluate')
    .description(
      'evaluate a model on image-caption pairs as siglip2 finetune does each epoch: loss, recall@1/5/10 both ways, zero-shot top-1/top-5 for class folders',
    )
    .requiredOption(
      '--data <data>',
      '.csv / .jsonl (image + caption columns) or a folder of <class>/<image>',
    )
    .option(
      '--image-column <name>',
      'CSV / JSONL column of image paths (relative to the data file)',
      'image',
    )
    .option('--caption-column <name>', 'CSV / JSONL column of captions', 'caption')
    .option(
      '--template <text>',
      'class folders: caption and zero-shot prompt, {} = class name',
      DEFAULT_FOLDER_TEMPLATE,
    )
    .option('--json', 'print the figures as JSON');
  pipelineOptions(cmd).action(async (opts: EvaluateCliOptions) => {
    const data = await readPairData(opts.data, {
      imageColumn: opts.imageColumn,
      captionColumn: opts.captionColumn,
      template: opts.template,
    });
    await checkImages(data);
    const pipe = await openPipeline(opts, 'both', `siglip2 evaluate --data ${opts.data}`);
    try {
      if (!pipe.tokenizer || !pipe.imageProcessor) {
        throw new Error('evaluate: the model came without a tokenizer or image processor');
      }
      const batchSize = batchSizeOf(opts);
      const m = await evaluateData(
        pipe.model,
        data,
        {
          imageProcessor: pipe.imageProcessor,
          tokenizer: pipe.tokenizer,
          textLength: pipe.textLength,
          lowercase: opts.lowercase,
        },
        { batchSize, zeroShotTemplate: data.classes ? opts.template : undefined },
      );
      if (opts.json) console.log(JSON.stringify({ data: opts.data, ...m }, null, 2));
      else
        console.log(
          formatEval({ type: 'eval', epoch: 0, step: 0, seconds: 0, ...m }).replace(
            /^epoch 0 \(step 0\): /,
            `${opts.data} (${m.pairs} pairs): `,
          ),
        );
    } finally {
      pipe.dispose();
    }
  });
}
