// Training curves with Vega-Lite (rendered headlessly to SVG by Vega, no canvas needed), and the SVG turned
// into a PNG by sharp (librsvg inside libvips).
import sharp from 'sharp';
import * as vega from 'vega';
import * as vl from 'vega-lite';
import type { MetricsRecord } from './metrics_log.js';

interface Point {
  step: number;
  value: number;
  series: string;
}

const RECALLS: [string, string][] = [
  ['image_to_text_r1', 'image→text R@1'],
  ['text_to_image_r1', 'text→image R@1'],
  ['image_to_text_r5', 'image→text R@5'],
  ['text_to_image_r5', 'text→image R@5'],
];

/** The Vega-Lite specification of the curves: loss, recall and (class folders) zero-shot accuracy against step. */
export function curvesSpec(records: readonly MetricsRecord[], title: string): vl.TopLevelSpec {
  const loss: Point[] = [];
  const recall: Point[] = [];
  const accuracy: Point[] = [];
  for (const r of records) {
    if (r.type === 'step') loss.push({ step: r.step, value: r.train_loss, series: 'train loss' });
    else {
      loss.push({ step: r.step, value: r.val_loss, series: 'validation loss' });
      for (const [k, name] of RECALLS) {
        recall.push({ step: r.step, value: r[k as keyof typeof r] as number, series: name });
      }
      if (r.zeroshot_top1 !== undefined) {
        accuracy.push({ step: r.step, value: r.zeroshot_top1, series: 'zero-shot top-1' });
        accuracy.push({
          step: r.step,
          value: r.zeroshot_top5 as number,
          series: 'zero-shot top-5',
        });
      }
    }
  }
  const panel = (values: Point[], yTitle: string, domain?: [number, number]) => ({
    width: 300,
    height: 200,
    data: { values },
    mark: { type: 'line' as const, point: values.length < 60 ? true : false },
    encoding: {
      x: { field: 'step', type: 'quantitative' as const, title: 'optimizer step' },
      y: {
        field: 'value',
        type: 'quantitative' as const,
        title: yTitle,
        ...(domain ? { scale: { domain } } : {}),
      },
      color: { field: 'series', type: 'nominal' as const, title: null },
    },
  });
  const panels = [panel(loss, 'loss'), panel(recall, 'recall', [0, 1])];
  if (accuracy.length) panels.push(panel(accuracy, 'accuracy', [0, 1]));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    background: 'white',
    config: { font: 'DejaVu Sans', legend: { orient: 'bottom', columns: 2 } },
    hconcat: panels,
    resolve: { scale: { color: 'independent' } },
  } as vl.TopLevelSpec;
}

/** Renders the curves to SVG text and PNG bytes. */
export async function renderCurves(
  records: readonly MetricsRecord[],
  title: string,
): Promise<{ svg: string; png: Buffer }> {
  const spec = vl.compile(curvesSpec(records, title)).spec;
  const view = new vega.View(vega.parse(spec), { renderer: 'none' });
  try {
    const svg = await view.toSVG();
    const png = await sharp(Buffer.from(svg), { density: 144 }).png().toBuffer();
    return { svg, png };
  } finally {
    view.finalize();
  }
}
