import type { Command } from 'commander';
import { MODES, type FinetuneMode } from '../../finetune/modes.js';
import {
  DEFAULT_SETTINGS,
  type FinetuneSettings,
  SCHEDULES,
  type ScheduleName,
} from '../../finetune/run_config.js';
import { type GivenSettings, runFinetune } from '../../finetune/run.js';
import type { MetricsRecord } from '../../finetune/metrics_log.js';
import { backendOptions, selectBackend } from '../backend_option.js';

interface FinetuneCliOptions {
  model?: string;
  train?: string;
  val?: string;
  valSplit?: string;
  out?: string;
  resume?: string;
  imageColumn: string;
  captionColumn: string;
  template: string;
  mode: string;
  loraRank: string;
  loraAlpha?: string;
  loraTargets: string;
  freeze?: string;
  epochs: string;
  batchSize: string;
  accumulate: string;
  lr: string;
  warmup: string;
  schedule: string;
  weightDecay: string;
  maxGradNorm: string;
  checkpointing?: boolean;
  seed: string;
  maxNumPatches?: string;
  augment?: string;
  cropScale: string;
  lowercase: boolean;
  json?: boolean;
  tfjs: boolean;
  backend?: string;
  threads?: number;
}

/** A number option, naming the flag when it is not one. */
export function numberOption(v: string, flag: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new Error(`${flag} ${v}: expected a number`);
  return n;
}

/** `--augment crop,flip` -> options; unknown names are an error. */
export function parseAugment(
  v: string | undefined,
  cropScale: number,
): FinetuneSettings['augment'] {
  if (v === undefined || v === '' || v === 'none') return {};
  const out: FinetuneSettings['augment'] = {};
  for (const item of v.split(',').map((s) => s.trim())) {
    if (item === 'crop') {
      out.crop = true;
      out.cropScale = cropScale;
    } else if (item === 'flip') out.flip = true;
    else
      throw new Error(`--augment ${v}: unknown augmentation ${JSON.stringify(item)} (crop, flip)`);
  }
  return out;
}

function settingsFrom(o: FinetuneCliOptions): FinetuneSettings {
  const rank = numberOption(o.loraRank, '--lora-rank');
  return {
    model: o.model as string,
    train: o.train as string,
    val: o.val,
    valSplit:
      o.val === undefined
        ? numberOption(o.valSplit ?? '0.1', '--val-split')
        : o.valSplit === undefined
          ? undefined
          : numberOption(o.valSplit, '--val-split'),
    imageColumn: o.imageColumn,
    captionColumn: o.captionColumn,
    template: o.template,
    mode: o.mode as FinetuneMode,
    loraRank: rank,
    loraAlpha: o.loraAlpha === undefined ? 2 * rank : numberOption(o.loraAlpha, '--lora-alpha'),
    loraTargets: o.loraTargets
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    freeze: o.freeze,
    batchSize: numberOption(o.batchSize, '--batch-size'),
    accumulate: numberOption(o.accumulate, '--accumulate'),
    lr: numberOption(o.lr, '--lr'),
    warmup: numberOption(o.warmup, '--warmup'),
    schedule: o.schedule as ScheduleName,
    weightDecay: numberOption(o.weightDecay, '--weight-decay'),
    maxGradNorm:
      o.maxGradNorm === 'none' ? undefined : numberOption(o.maxGradNorm, '--max-grad-norm'),
    checkpointing: Boolean(o.checkpointing),
    seed: numberOption(o.seed, '--seed'),
    maxNumPatches:
      o.maxNumPatches === undefined
        ? undefined
        : numberOption(o.maxNumPatches, '--max-num-patches'),
    lowercase: o.lowercase,
    augment: parseAugment(o.augment, numberOption(o.cropScale, '--crop-scale')),
  };
}

/** Options of `finetune` that are run settings, by commander key -> settings key. */
const SETTING_KEYS: Record<string, keyof FinetuneSettings> = {
  model: 'model',
  train: 'train',
  val: 'val',
  valSplit: 'valSplit',
  imageColumn: 'imageColumn',
  captionColumn: 'captionColumn',
  template: 'template',
  mode: 'mode',
  loraRank: 'loraRank',
  loraAlpha: 'loraAlpha',
  loraTargets: 'loraTargets',
  freeze: 'freeze',
  batchSize: 'batchSize',
  accumulate: 'accumulate',
  lr: 'lr',
  warmup: 'warmup',
  schedule: 'schedule',
  weightDecay: 'weightDecay',
  maxGradNorm: 'maxGradNorm',
  checkpointing: 'checkpointing',
  seed: 'seed',
  maxNumPatches: 'maxNumPatches',
  lowercase: 'lowercase',
  augment: 'augment',
};

export function registerFinetune(program: Command): void {
  const d = DEFAULT_SETTINGS;
  const cmd = program
    .command('finetune')
    .description(
      'fine-tune a SigLIP / SigLIP 2 model on image-caption pairs; writes metrics, curves, checkpoints, hf/ and tfjs/ into --out',
    )
    .option(
      '--model <model>',
      'model to start from: Hugging Face folder, converted folder, or hub id org/name',
    )
    .option(
      '--train <data>',
      'training pairs: .csv / .jsonl (image + caption columns) or a folder of <class>/<image>',
    )
    .option('--val <data>', 'validation pairs (same forms as --train)')
    .option(
      '--val-split <fraction>',
      'without --val: hold out this seeded fraction of --train (default 0.1)',
    )
    .option('--out <dir>', 'output folder (must be new or empty)')
    .option('--resume <dir>', 'continue the run in this output folder up to --epochs (in total)')
    .option(
      '--image-column <name>',
      'CSV / JSONL column of image paths (relative to the data file)',
      d.imageColumn,
    )
    .option('--caption-column <name>', 'CSV / JSONL column of captions', d.captionColumn)
    .option(
      '--template <text>',
      'class folders: caption and zero-shot prompt, {} = class name',
      d.template,
    )
    .option('--mode <mode>', `what to train: ${MODES.join(', ')}`, d.mode)
    .option('--lora-rank <r>', 'LoRA rank', String(d.loraRank))
    .option('--lora-alpha <a>', 'LoRA alpha (default 2 x rank)')
    .option('--lora-targets <names>', 'Linear layers given adapters', d.loraTargets.join(','))
    .option(
      '--freeze <spec>',
      'keep fixed: vision, text, vision:0-5 (layers), text:embeddings; comma-separated',
    )
    .option('--epochs <n>', 'epochs in total', '3')
    .option(
      '--batch-size <n>',
      'pairs per micro-batch (the sigmoid loss takes its negatives within it)',
      String(d.batchSize),
    )
    .option('--accumulate <n>', 'micro-batches per optimizer step', String(d.accumulate))
    .option('--lr <rate>', 'peak learning rate', String(d.lr))
    .option(
      '--warmup <steps>',
      'warm-up optimizer steps (below 1: a fraction of all steps)',
      String(d.warmup),
    )
    .option(
      '--schedule <name>',
      `learning-rate schedule after warm-up: ${SCHEDULES.join(', ')}`,
      d.schedule,
    )
    .option(
      '--weight-decay <wd>',
      'AdamW decoupled weight decay (matrices only)',
      String(d.weightDecay),
    )
    .option('--max-grad-norm <n>', 'clip the global gradient norm ("none": no clipping)', '1')
    .option(
      '--checkpointing',
      'gradient checkpointing: recompute layers in the backward pass (less memory)',
    )
    .option(
      '--seed <n>',
      'seed of the data order, split, augmentation and LoRA initialisation',
      String(d.seed),
    )
    .option('--max-num-patches <n>', 'NaFlex models: patch budget per image')
    .option(
      '--augment <list>',
      'image augmentation: crop (random resized crop), flip (horizontal); e.g. crop,flip',
    )
    .option('--crop-scale <min>', 'random resized crop: smallest area fraction', '0.5')
    .option('--no-lowercase', 'feed captions as given (SigLIP 2 expects lowercased text)')
    .option('--no-tfjs', 'skip the tfjs/ export at the end')
    .option('--json', 'print one JSON object per step and evaluation on stdout (no progress bar)');
  backendOptions(cmd).action(async (opts: FinetuneCliOptions) => {
    let out: string;
    let what: Parameters<typeof runFinetune>[1];
    const epochs = numberOption(opts.epochs, '--epochs');
    if (opts.resume !== undefined) {
      if (opts.out !== undefined && opts.out !== opts.resume) {
        throw new Error(
          `--out ${opts.out} and --resume ${opts.resume}: a resumed run writes into its own folder`,
        );
      }
      out = opts.resume;
      const all = settingsFrom({ ...opts, model: opts.model, train: opts.train });
      const given: GivenSettings = {};
      for (const [key, setting] of Object.entries(SETTING_KEYS)) {
        if (cmd.getOptionValueSource(key) === 'cli') {
          (given as Record<string, unknown>)[setting] = all[setting];
        }
      }
      if (cmd.getOptionValueSource('cropScale') === 'cli') given.augment = all.augment;
      if (
        cmd.getOptionValueSource('loraRank') === 'cli' &&
        cmd.getOptionValueSource('loraAlpha') !== 'cli'
      ) {
        delete given.loraAlpha;
      }
      if (cmd.getOptionValueSource('val') !== 'cli') delete given.valSplit;
      what = { resume: true, given };
    } else {
      const missing = ['model', 'train', 'out'].filter((k) => opts[k as 'model'] === undefined);
      if (missing.length) {
        throw new Error(
          `finetune needs ${missing.map((m) => `--${m}`).join(', ')} (or --resume <out> to continue a run)`,
        );
      }
      out = opts.out as string;
      what = { settings: settingsFrom(opts) };
    }
    await selectBackend(opts, opts.json);
    const ac = new AbortController();
    const onSigint = () => {
      if (ac.signal.aborted) process.exit(130);
      console.error(
        '\nstopping after this step to save a checkpoint (Ctrl-C again quits without saving)',
      );
      ac.abort();
    };
    process.on('SIGINT', onSigint);
    try {
      const result = await runFinetune(
        out,
        what,
        { epochs },
        {
          signal: ac.signal,
          progress: !opts.json && process.stderr.isTTY === true,
          exportTfjs: opts.tfjs,
          onInfo: (m) => console.error(m),
          onWarning: (m) => console.error(`warning: ${m}`),
          onRecord: (r: MetricsRecord) => {
            if (opts.json) console.log(JSON.stringify(r));
            else if (r.type === 'eval') console.error(formatEval(r));
          },
        },
      );
      if (result.status === 'interrupted') process.exitCode = 130;
    } finally {
      process.off('SIGINT', onSigint);
    }
  });
}

/** One line per evaluation for people. */
export function formatEval(r: MetricsRecord & { type: 'eval' }): string {
  const pct = (x: number) => (100 * x).toFixed(1).padStart(5);
  let s =
    `epoch ${r.epoch} (step ${r.step}): val loss ${r.val_loss.toFixed(4)} | ` +
    `R@1/5/10 image->text ${pct(r.image_to_text_r1)} ${pct(r.image_to_text_r5)} ${pct(r.image_to_text_r10)}, ` +
    `text->image ${pct(r.text_to_image_r1)} ${pct(r.text_to_image_r5)} ${pct(r.text_to_image_r10)}`;
  if (r.zeroshot_top1 !== undefined) {
    s += ` | zero-shot top-1 ${pct(r.zeroshot_top1)} top-5 ${pct(r.zeroshot_top5 as number)}`;
  }
  return s;
}
