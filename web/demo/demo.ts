/**
 * The demo page: loads a converted model over HTTP (progress bar), then tab 1 scores one image against typed
 * labels (bars, backend, timings) and tab 2 embeds a folder of images and searches it by text.
 * Query parameters: ?model=<url of the converted folder>&backend=auto|webgpu|wasm|cpu&autoload=0
 */
import {
  type BackendName,
  loadSiglip,
  type LoadedSiglipModel,
  SiglipPipeline,
} from '../../src/web.js';

/** Dot product of two unit-length embeddings: their cosine similarity. */
function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

const $ = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`demo: no #${id}`);
  return el as T;
};

interface DemoState {
  model?: LoadedSiglipModel;
  pipeline?: SiglipPipeline;
  image?: HTMLImageElement;
  gallery: { name: string; url: string; embedding: Float32Array }[];
}

const state: DemoState = { gallery: [] };
/**
 * Read by the browser test: the last scores shown, whether the page is busy, how many folder images are embedded
 * and the last search ranking (best first).
 */
const demoGlobal = globalThis as unknown as {
  siglip2Demo?: {
    ready: boolean;
    busy: boolean;
    error?: string;
    scores?: { label: string; score: number }[];
    embedded?: number;
    ranking?: { name: string; logit: number }[];
  };
};
demoGlobal.siglip2Demo = { ready: false, busy: false };

const ms = (t: number) => `${t.toFixed(0)} ms`;

function setStatus(text: string, error = false): void {
  const s = $('status');
  s.textContent = text;
  s.style.color = error ? '#b00020' : '';
  if (error) demoGlobal.siglip2Demo!.error = text;
}

async function load(): Promise<void> {
  const url = new URL($<HTMLInputElement>('model-url').value, location.href).href;
  const backend = $<HTMLSelectElement>('backend').value as BackendName | 'auto';
  const bar = $('progress-bar');
  $<HTMLButtonElement>('run').disabled = true;
  state.model?.dispose();
  state.model = undefined;
  state.gallery = [];
  bar.style.width = '0';
  setStatus(`Loading ${url} …`);
  demoGlobal.siglip2Demo!.ready = false;
  const t0 = performance.now();
  try {
    const model = await loadSiglip(url, {
      backend,
      backendOptions: { wasmPaths: new URL('../wasm/', import.meta.url).href },
      onProgress: (p) => {
        bar.style.width = `${(100 * p.fraction).toFixed(1)}%`;
        setStatus(
          `Loading ${p.tower} tower: ${(p.loadedBytes / 2 ** 20).toFixed(1)} / ${(p.totalBytes / 2 ** 20).toFixed(1)} MiB`,
        );
      },
    });
    state.model = model;
    state.pipeline = await SiglipPipeline.fromLoadedModel(model);
    bar.style.width = '100%';
    const loadMs = performance.now() - t0;
    const name = model.manifest?.source?.repo ?? url;
    setStatus(`Loaded ${name} in ${ms(loadMs)}.`);
    $('backend-info').textContent = `Backend: ${model.backendReport?.reason ?? 'default'}`;
    $<HTMLButtonElement>('run').disabled = !state.image;
    $<HTMLButtonElement>('search-go').disabled = state.gallery.length === 0;
    demoGlobal.siglip2Demo!.ready = true;
  } catch (e) {
    setStatus(`Could not load the model: ${(e as Error).message}`, true);
  }
}

function showImage(file: File): void {
  const img = $<HTMLImageElement>('preview');
  img.onload = () => {
    state.image = img;
    $<HTMLButtonElement>('run').disabled = !state.pipeline;
  };
  img.src = URL.createObjectURL(file);
}

async function classify(): Promise<void> {
  const { pipeline, image } = state;
  if (!pipeline || !image) return;
  const labels = $<HTMLInputElement>('labels')
    .value.split(',')
    .map((s) => s.trim())
    .filter((s) => s);
  if (!labels.length) return;
  demoGlobal.siglip2Demo!.busy = true;
  try {
    const t0 = performance.now();
    const scores = await pipeline.classify(image, labels);
    const total = performance.now() - t0;
    const list = $('bars');
    list.replaceChildren(
      ...scores.map((s) => {
        const li = document.createElement('li');
        const label = document.createElement('span');
        label.textContent = s.label;
        const bar = document.createElement('div');
        bar.className = 'bar';
        bar.style.width = `${(100 * s.score).toFixed(1)}%`;
        const value = document.createElement('span');
        value.className = 'value';
        value.textContent = `${(100 * s.score).toFixed(1)}%`;
        li.append(label, bar, value);
        return li;
      }),
    );
    $('timings').textContent =
      `classified in ${ms(total)}: image and ${labels.length} labels embedded and scored ` +
      `(backend ${state.model?.backendReport?.name ?? '?'})`;
    demoGlobal.siglip2Demo!.scores = scores.map(({ label, score }) => ({ label, score }));
  } catch (e) {
    setStatus(`Scoring failed: ${(e as Error).message}`, true);
  } finally {
    demoGlobal.siglip2Demo!.busy = false;
  }
}

async function embedFolder(files: File[]): Promise<void> {
  const pipeline = state.pipeline;
  if (!pipeline) return;
  demoGlobal.siglip2Demo!.embedded = undefined;
  const images = files.filter((f) => f.type.startsWith('image/'));
  const bar = $('embed-bar');
  const status = $('folder-status');
  state.gallery = [];
  const t0 = performance.now();
  for (let i = 0; i < images.length; i++) {
    const url = URL.createObjectURL(images[i]);
    try {
      const bitmap = await createImageBitmap(images[i]);
      const embedding = (await pipeline.embedImages([bitmap])).data;
      bitmap.close();
      state.gallery.push({ name: images[i].webkitRelativePath || images[i].name, url, embedding });
    } catch (e) {
      console.warn(`${images[i].name}: ${(e as Error).message}`);
    }
    bar.style.width = `${((100 * (i + 1)) / images.length).toFixed(1)}%`;
    status.textContent = `embedded ${i + 1} / ${images.length}`;
  }
  const took = performance.now() - t0;
  status.textContent = `${state.gallery.length} images embedded in ${ms(took)} (${((1000 * state.gallery.length) / took).toFixed(2)} images/s)`;
  $<HTMLButtonElement>('search-go').disabled = state.gallery.length === 0;
  demoGlobal.siglip2Demo!.embedded = state.gallery.length;
}

async function search(): Promise<void> {
  const { pipeline, gallery } = state;
  const query = $<HTMLInputElement>('query').value.trim();
  if (!pipeline || !gallery.length || !query) return;
  const t0 = performance.now();
  const q = (await pipeline.embedTexts([query])).data;
  const { scale, bias } = pipeline.model.logitScaleAndBias();
  const ranked = gallery
    .map((g) => ({ ...g, logit: dot(q, g.embedding) * scale + bias }))
    .sort((a, b) => b.logit - a.logit)
    .slice(0, 24);
  $('search-timings').textContent = `query embedded and ranked in ${ms(performance.now() - t0)}`;
  demoGlobal.siglip2Demo!.ranking = ranked.map(({ name, logit }) => ({ name, logit }));
  $('results').replaceChildren(
    ...ranked.map((r) => {
      const li = document.createElement('li');
      const img = document.createElement('img');
      img.src = r.url;
      img.alt = r.name;
      const caption = document.createElement('span');
      caption.textContent = `${(100 / (1 + Math.exp(-r.logit))).toFixed(1)}%  ${r.name}`;
      li.append(img, caption);
      return li;
    }),
  );
}

function setUpTabs(): void {
  for (const tab of document.querySelectorAll<HTMLButtonElement>('.tab')) {
    tab.addEventListener('click', () => {
      for (const t of document.querySelectorAll('.tab')) t.classList.toggle('active', t === tab);
      for (const p of document.querySelectorAll('.panel'))
        p.classList.toggle('active', p.id === tab.dataset.tab);
    });
  }
}

function main(): void {
  const params = new URLSearchParams(location.search);
  if (params.get('model')) $<HTMLInputElement>('model-url').value = params.get('model')!;
  if (params.get('backend')) $<HTMLSelectElement>('backend').value = params.get('backend')!;
  setUpTabs();
  $('load-form').addEventListener('submit', (e) => {
    e.preventDefault();
    void load();
  });
  const drop = $('drop');
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const f = e.dataTransfer?.files[0];
    if (f) showImage(f);
  });
  $<HTMLInputElement>('file').addEventListener('change', (e) => {
    const f = (e.target as HTMLInputElement).files?.[0];
    if (f) showImage(f);
  });
  $('run').addEventListener('click', () => void classify());
  $<HTMLInputElement>('folder').addEventListener('change', (e) => {
    void embedFolder([...((e.target as HTMLInputElement).files ?? [])]);
  });
  $('search-form').addEventListener('submit', (e) => {
    e.preventDefault();
    void search();
  });
  if (params.get('autoload') !== '0') void load();
}

main();
