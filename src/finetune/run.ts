// `siglip2 finetune` without the command line: a whole fine-tuning run (data, model, training loop with
// evaluation each epoch, metrics, curves, checkpoints, exports) that can be interrupted and resumed exactly.
import cliProgress from 'cli-progress';
import { existsSync, promises as fsp } from 'node:fs';
import { join, resolve } from 'node:path';
import { convertCheckpoint } from '../../converter/convert.js';
import type { SiglipModel } from '../model/siglip_model.js';
// NaFlex (siglip2) vision towers register themselves on import.
import '../model/naflex_vision_model.js';
import { loadPipeline, resolvePipelineModel } from '../pipeline/node.js';
import type { SiglipPipeline } from '../pipeline/pipeline.js';
import { exportHf } from '../train/export_hf.js';
import type { LoraAdapters } from '../train/lora.js';
import { Trainer } from '../train/trainer.js';
import { seededRandom } from '../util/random.js';
import { removeTemporaries, replaceDirAtomic, writeFileAtomic } from './atomic.js';
import { disposePairBatch, loadBatch, type Preprocessing } from './batches.js';
import { renderCurves } from './charts.js';
import {
  checkImages,
  dataFingerprint,
  findOverlap,
  type PairData,
  readPairData,
  shuffledIndices,
  splitValidation,
} from './data_source.js';
import { type EvalMetrics, evaluateData, finetuneLoss } from './evaluation.js';
import {
  type EvalRecord,
  MetricsLog,
  type MetricsRecord,
  type StepMetrics,
} from './metrics_log.js';
import { parseFreeze, setUpMode } from './modes.js';
import {
  type FinetuneSettings,
  RUN_FILE,
  type RunControl,
  type RunFile,
  checkResumeSettings,
  readRunFile,
  validateSettings,
} from './run_config.js';
import { loadRunCheckpoint, type RunState, saveRunCheckpoint } from './run_state.js';
import { learningRateSchedule } from './schedule.js';

export interface RunHooks {
  /** Aborting it (Ctrl-C) stops after the current step, saves a checkpoint and returns `interrupted`. */
  signal?: AbortSignal;
  /** Every metrics record as it is written (the CLI prints them with --json). */
  onRecord?: (r: MetricsRecord) => void;
  /** Progress messages. */
  onInfo?: (message: string) => void;
  onWarning?: (message: string) => void;
  /** A progress bar per epoch on stderr. Default false. */
  progress?: boolean;
  /** Write `tfjs/` (converted artifacts) at the end. Default true. */
  exportTfjs?: boolean;
}

export interface RunResult {
  status: 'done' | 'interrupted';
  out: string;
  /** Optimizer steps taken in the whole run. */
  step: number;
  /** The last evaluation. */
  last?: EvalMetrics;
  best?: RunState['best'];
}

/** The output folder's layout. */
export const OUT = {
  metrics: 'metrics.jsonl',
  svg: 'curves.svg',
  png: 'curves.png',
  last: join('checkpoints', 'last'),
  best: join('checkpoints', 'best'),
  hf: 'hf',
  tfjs: 'tfjs',
} as const;

/** Loaded data of a run. */
interface RunData {
  train: PairData;
  val: PairData;
}

/** Reads, checks and splits the data; warns about overlap. Creates nothing. */
export async function prepareData(
  s: FinetuneSettings,
  warn: (m: string) => void,
): Promise<RunData> {
  const dataOpts = {
    imageColumn: s.imageColumn,
    captionColumn: s.captionColumn,
    template: s.template,
  };
  let train = await readPairData(s.train, dataOpts);
  let val: PairData;
  if (s.val !== undefined) {
    val = await readPairData(s.val, dataOpts);
  } else {
    const split = splitValidation(train, s.valSplit ?? 0.1, s.seed);
    train = split.train;
    val = split.val;
  }
  await checkImages(train);
  await checkImages(val);
  if (s.val !== undefined) {
    if (train.classes && val.classes && train.classes.join('\n') !== val.classes.join('\n')) {
      throw new Error(
        `${s.val}: its classes (${val.classes.join(', ')}) differ from ${s.train}'s (${train.classes.join(', ')})`,
      );
    }
    const o = await findOverlap(train, val);
    if (o.count > 0) {
      warn(
        `${o.count} of the ${val.records.length} validation images are also in the training data ` +
          `(${o.examples.join('; ')}${o.count > o.examples.length ? '; ...' : ''}); validation figures will look better than they are`,
      );
    }
  }
  const micro = Math.floor(train.records.length / s.batchSize);
  if (micro < 1) {
    throw new Error(
      `--batch-size ${s.batchSize}: larger than the ${train.records.length} training pairs of ${train.source}; ` +
        `use at most --batch-size ${train.records.length}`,
    );
  }
  if (Math.floor(micro / s.accumulate) < 1) {
    throw new Error(
      `--accumulate ${s.accumulate} x --batch-size ${s.batchSize}: more than the ${train.records.length} training pairs; ` +
        'no full optimizer step fits in an epoch',
    );
  }
  return { train, val };
}

async function openModel(
  s: FinetuneSettings,
  info: (m: string) => void,
): Promise<{
  pipe: SiglipPipeline;
  location: string;
  prep: Preprocessing;
}> {
  const resolved = await resolvePipelineModel(s.model, {});
  if (/^(https?|blob|data):/i.test(resolved.location)) {
    throw new Error(
      `--model ${s.model}: fine-tuning needs a model on this machine (a folder or a hub id), not a URL`,
    );
  }
  const pipe = await loadPipeline(resolved.location, {
    towers: 'both',
    maxNumPatches: s.maxNumPatches,
    lowercase: s.lowercase,
    onInfo: info,
  });
  const model = pipe.model;
  if (!model.vision || !model.text || !model.scores) {
    pipe.dispose();
    throw new Error(`--model ${s.model}: fine-tuning needs both towers and the scoring head`);
  }
  if (!pipe.tokenizer || !pipe.imageProcessor) {
    pipe.dispose();
    throw new Error(
      `--model ${s.model}: no tokenizer.json (or image processor) with the model; fine-tuning tokenizes captions`,
    );
  }
  return {
    pipe,
    location: resolve(resolved.location),
    prep: {
      imageProcessor: pipe.imageProcessor,
      tokenizer: pipe.tokenizer,
      textLength: pipe.textLength,
      lowercase: s.lowercase,
    },
  };
}

async function isEmptyDir(dir: string): Promise<boolean> {
  if (!existsSync(dir)) return true;
  const st = await fsp.stat(dir);
  if (!st.isDirectory()) return false;
  return (await fsp.readdir(dir)).length === 0;
}

/** Settings given on the command line of a resumed run (compared with the saved ones). */
export type GivenSettings = Partial<FinetuneSettings>;

/**
 * Runs (or, with `resumeFrom`, continues) a fine-tuning run into `out`. Everything is checked before anything is
 * written: data, images, model, options. A new run refuses a non-empty `out`.
 */
export async function runFinetune(
  out: string,
  settingsOrResume: { settings: FinetuneSettings } | { resume: true; given: GivenSettings },
  control: RunControl,
  hooks: RunHooks = {},
): Promise<RunResult> {
  const info = hooks.onInfo ?? (() => undefined);
  const warn = hooks.onWarning ?? ((m: string) => console.warn(`warning: ${m}`));
  let settings: FinetuneSettings;
  let runFile: RunFile | undefined;
  if ('resume' in settingsOrResume) {
    runFile = await readRunFile(out);
    checkResumeSettings(out, runFile.settings, settingsOrResume.given);
    settings = runFile.settings;
    if (!existsSync(join(out, OUT.last, 'state.json'))) {
      throw new Error(`--resume ${out}: no checkpoint in ${join(out, OUT.last)} to continue from`);
    }
  } else {
    settings = settingsOrResume.settings;
    if (!(await isEmptyDir(out))) {
      throw new Error(
        `--out ${out}: the folder exists and is not empty; continue that run with --resume ${out}, or choose another folder`,
      );
    }
  }
  validateSettings(settings, control);
  const freeze = parseFreeze(settings.freeze);
  const data = await prepareData(settings, warn);
  if (runFile) {
    const fp = { train: dataFingerprint(data.train), val: dataFingerprint(data.val) };
    if (fp.train !== runFile.data.train.fingerprint || fp.val !== runFile.data.val.fingerprint) {
      throw new Error(
        `--resume ${out}: the data changed since the run started (${settings.train}${settings.val ? `, ${settings.val}` : ''}); ` +
          'a resumed run must see the same pairs',
      );
    }
  }
  const { pipe, location, prep } = await openModel(settings, info);
  const model = pipe.model;
  let lora: LoraAdapters | undefined;
  let trainer: Trainer | undefined;
  try {
    if (runFile && JSON.stringify(runFile.modelConfig) !== JSON.stringify(model.config)) {
      throw new Error(
        `--resume ${out}: the run fine-tuned a model with another configuration than ${settings.model} has now`,
      );
    }
    const mode = setUpMode(model, {
      mode: settings.mode,
      freeze,
      loraRank: settings.loraRank,
      loraAlpha: settings.loraAlpha,
      loraTargets: settings.loraTargets,
      seed: settings.seed,
    });
    lora = mode.lora;
    const n = data.train.records.length;
    const microPerEpoch = Math.floor(n / settings.batchSize);
    const stepsPerEpoch = Math.floor(microPerEpoch / settings.accumulate);
    const totalSteps = stepsPerEpoch * control.epochs;
    trainer = new Trainer(model, {
      params: mode.params,
      schedule: learningRateSchedule(settings.schedule, settings.lr, settings.warmup, totalSteps),
      weightDecay: settings.weightDecay,
      maxGradNorm: settings.maxGradNorm,
      accumulationSteps: settings.accumulate,
      gradientCheckpointing: settings.checkpointing,
      lossFn: (m: SiglipModel, b) => finetuneLoss(m, b, true),
    });
    const trainedSize = mode.params.reduce(
      (a, p) => a + (p.variable.shape as number[]).reduce((x, y) => x * y, 1),
      0,
    );
    info(
      `${settings.mode}: training ${trainedSize.toLocaleString('en-US')} parameters (${mode.params.length} tensors); ` +
        `${n} training pairs, ${data.val.records.length} validation pairs, ${stepsPerEpoch} steps per epoch`,
    );

    // From here on <out> is written.
    const metrics = new MetricsLog(join(out, OUT.metrics));
    let state: RunState;
    if (runFile) {
      await removeTemporaries(out);
      await removeTemporaries(join(out, 'checkpoints'));
      state = await loadRunCheckpoint(join(out, OUT.last), trainer, lora);
      await metrics.resume(state.metricsRecords);
      if (control.epochs < state.epoch) {
        throw new Error(
          `--epochs ${control.epochs}: the run in ${out} has already done ${state.epoch} epochs`,
        );
      }
      if (control.epochs !== runFile.epochs) {
        if (settings.schedule !== 'constant') {
          warn(
            `--epochs ${control.epochs} instead of ${runFile.epochs}: the ${settings.schedule} schedule now spans ` +
              `${totalSteps} steps, so steps from ${state.step + 1} on use other learning rates than a run of ` +
              `${control.epochs} epochs from the start would have used`,
          );
        }
        runFile = { ...runFile, epochs: control.epochs };
        await writeFileAtomic(join(out, RUN_FILE), JSON.stringify(runFile, null, 2) + '\n');
      }
      info(
        `resuming ${out} at epoch ${state.epoch}${state.epochDone ? ' (done)' : `, step ${state.stepInEpoch}`}`,
      );
    } else {
      await fsp.mkdir(join(out, 'checkpoints'), { recursive: true });
      runFile = {
        format: 'siglip2-finetune-run',
        version: 1,
        settings,
        epochs: control.epochs,
        modelLocation: location,
        modelConfig: model.config,
        data: {
          train: { pairs: n, fingerprint: dataFingerprint(data.train) },
          val: { pairs: data.val.records.length, fingerprint: dataFingerprint(data.val) },
        },
      };
      await writeFileAtomic(join(out, RUN_FILE), JSON.stringify(runFile, null, 2) + '\n');
      await fsp.writeFile(metrics.path, '');
      state = {
        format: 'siglip2-finetune-state',
        version: 1,
        epoch: 0,
        stepInEpoch: 0,
        epochDone: true,
        step: 0,
        order: [],
        rng: {
          seed: settings.seed,
          orderStream: 'mulberry32(seed, epoch)',
          augmentStream: 'mulberry32(seed, epoch, index)',
        },
        metricsRecords: 0,
      };
    }

    const title = `siglip2 finetune --mode ${settings.mode} (${data.train.source})`;
    const evaluate = async (epoch: number): Promise<EvalRecord> => {
      const t0 = performance.now();
      const m = await evaluateData(model, data.val, prep, {
        batchSize: settings.batchSize,
        zeroShotTemplate: data.val.classes ? settings.template : undefined,
      });
      const r: EvalRecord = {
        type: 'eval',
        epoch,
        step: trainer?.optimizer.step ?? 0,
        ...m,
        seconds: (performance.now() - t0) / 1000,
      };
      await metrics.append(r);
      hooks.onRecord?.(r);
      const { svg, png } = await renderCurves(metrics.records, title);
      await writeFileAtomic(join(out, OUT.svg), svg);
      await writeFileAtomic(join(out, OUT.png), png);
      return r;
    };
    const save = async (dir: string) => {
      state.metricsRecords = metrics.records.length;
      await saveRunCheckpoint(join(out, dir), trainer as Trainer, lora, state);
    };

    if (state.epoch === 0 && metrics.records.length === 0) await evaluate(0);
    let last = [...metrics.records].reverse().find((r): r is EvalRecord => r.type === 'eval');

    for (
      let epoch = state.epochDone ? state.epoch + 1 : state.epoch;
      epoch <= control.epochs;
      epoch++
    ) {
      if (state.epoch !== epoch) {
        state.epoch = epoch;
        state.stepInEpoch = 0;
        state.epochDone = false;
        state.order = shuffledIndices(n, seededRandom(orderSeed(settings.seed, epoch)));
      }
      const bar = hooks.progress
        ? new cliProgress.SingleBar(
            {
              format: `epoch ${epoch}/${control.epochs} {bar} {value}/{total} | loss {loss} | {ips} img/s | eta {eta_formatted}`,
              stream: process.stderr,
              hideCursor: false,
              etaBuffer: 20,
            },
            cliProgress.Presets.shades_classic,
          )
        : undefined;
      bar?.start(stepsPerEpoch, state.stepInEpoch, { loss: '-', ips: '-' });
      try {
        while (state.stepInEpoch < stepsPerEpoch) {
          if (hooks.signal?.aborted) {
            await save(OUT.last);
            info(
              `interrupted: checkpoint saved in ${join(out, OUT.last)}; continue with --resume ${out}`,
            );
            return { status: 'interrupted', out, step: state.step, last, best: state.best };
          }
          const t0 = performance.now();
          const micro = [];
          try {
            for (let a = 0; a < settings.accumulate; a++) {
              const b = state.stepInEpoch * settings.accumulate + a;
              const idx = state.order.slice(b * settings.batchSize, (b + 1) * settings.batchSize);
              micro.push(
                await loadBatch(data.train.records, idx, prep, {
                  ...settings.augment,
                  seed: settings.seed,
                  epoch,
                }),
              );
            }
            const r = await trainer.step(micro);
            const seconds = (performance.now() - t0) / 1000;
            state.stepInEpoch++;
            state.step = r.step;
            const rec: StepMetrics = {
              type: 'step',
              epoch,
              step: r.step,
              train_loss: r.loss,
              lr: r.learningRate,
              grad_norm: r.gradNorm,
              seconds,
              images_per_s: r.pairs / seconds,
            };
            await metrics.append(rec);
            hooks.onRecord?.(rec);
            bar?.update(state.stepInEpoch, {
              loss: r.loss.toFixed(4),
              ips: rec.images_per_s.toFixed(1),
            });
          } finally {
            micro.forEach(disposePairBatch);
          }
        }
      } finally {
        bar?.stop();
      }
      last = await evaluate(epoch);
      state.epochDone = true;
      const isBest = !state.best || last.val_loss < state.best.val_loss;
      if (isBest) state.best = { epoch, step: state.step, val_loss: last.val_loss };
      await save(OUT.last);
      if (isBest) {
        await replaceDirAtomic(join(out, OUT.best), (tmp) =>
          fsp.cp(join(out, OUT.last), tmp, { recursive: true }),
        );
      }
      if (hooks.signal?.aborted && epoch < control.epochs) {
        info(
          `interrupted: checkpoint saved in ${join(out, OUT.last)}; continue with --resume ${out}`,
        );
        return { status: 'interrupted', out, step: state.step, last, best: state.best };
      }
    }

    // Exports of the final weights.
    lora?.merge();
    lora = undefined;
    await replaceDirAtomic(join(out, OUT.hf), async (tmp) => {
      await exportHf(model, tmp, { sourceDir: location });
    });
    info(`wrote ${join(out, OUT.hf)} (Hugging Face format)`);
    if (hooks.exportTfjs ?? true) {
      await replaceDirAtomic(join(out, OUT.tfjs), async (tmp) => {
        await convertCheckpoint(join(out, OUT.hf), tmp, { overwrite: true });
      });
      info(
        `wrote ${join(out, OUT.tfjs)} (TF.js artifacts: siglip2 serve-demo --model ${join(out, OUT.tfjs)})`,
      );
    }
    return { status: 'done', out, step: state.step, last, best: state.best };
  } finally {
    trainer?.dispose();
    lora?.remove();
    pipe.dispose();
  }
}

/** Seed of an epoch's shuffle. */
export function orderSeed(seed: number, epoch: number): number {
  return (Math.imul(seed, 1000003) + epoch * 7919) >>> 0;
}
