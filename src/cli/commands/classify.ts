import type { Command } from 'commander';
import { DEFAULT_TEMPLATE } from '../../pipeline/pipeline.js';
import { openPipeline, pipelineOptions, type PipelineCliOptions } from '../pipeline_options.js';

interface ClassifyCliOptions extends PipelineCliOptions {
  labels: string;
  template: string;
  topK?: string;
}

/** `--labels a,b,c` -> ['a', 'b', 'c'] (trimmed); an empty list or an empty label is an error. */
function parseLabels(value: string | undefined): string[] {
  if (value === undefined || value.trim() === '') {
    throw new Error('--labels: the list of candidate labels is empty; give e.g. --labels cat,dog');
  }
  const labels = value.split(',').map((s) => s.trim());
  const empty = labels.findIndex((l) => l === '');
  if (empty >= 0) {
    throw new Error(
      `--labels ${JSON.stringify(value)}: label ${empty + 1} is empty (labels are separated by commas)`,
    );
  }
  return labels;
}

export function registerClassify(program: Command): void {
  const cmd = program
    .command('classify')
    .description(
      'zero-shot image classification: score each image against each label (independent sigmoid probabilities)',
    )
    .argument('<images...>', 'image files (JPEG, PNG, WebP, GIF, AVIF, TIFF)')
    .requiredOption('--labels <labels>', 'candidate labels, separated by commas')
    .option('--template <text>', 'text around each label; {} is replaced by it', DEFAULT_TEMPLATE)
    .option('--top-k <k>', 'show only the k best labels per image')
    .option('--json', 'print JSON (and no progress bars)');
  pipelineOptions(cmd).action(async (images: string[], opts: ClassifyCliOptions) => {
    const labels = parseLabels(opts.labels);
    const topK = opts.topK === undefined ? undefined : Number(opts.topK);
    if (topK !== undefined && !(Number.isInteger(topK) && topK > 0)) {
      throw new Error(`--top-k ${opts.topK}: expected a positive integer`);
    }
    const pipe = await openPipeline(opts, 'both', 'siglip2 classify photo.jpg --labels cat,dog');
    try {
      const results = await pipe.classify(images, labels, { template: opts.template, topK });
      if (opts.json) {
        console.log(
          JSON.stringify(
            {
              template: opts.template,
              results: images.map((image, i) => ({ image, predictions: results[i] })),
            },
            null,
            2,
          ),
        );
      } else {
        images.forEach((image, i) => {
          console.log(image);
          for (const r of results[i]) console.log(`  ${r.score.toFixed(4)}  ${r.label}`);
        });
      }
    } finally {
      pipe.dispose();
    }
  });
}
