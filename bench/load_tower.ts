// Child process of bench/convert.ts: loads one tower of a converted model and prints time and peak RSS as JSON.
import '../src/index.js';
import { loadSiglip } from '../src/loader/index.js';
import type { TowerChoice } from '../src/model/siglip_model.js';

const [dir, towers] = process.argv.slice(2);
const t0 = Date.now();
const model = await loadSiglip(dir, { towers: (towers ?? 'vision') as TowerChoice });
const seconds = (Date.now() - t0) / 1000;
const params = model.vision?.model.countParams() ?? model.text?.model.countParams();
model.dispose();
console.log(JSON.stringify({ seconds, params, rss: process.resourceUsage().maxRSS * 1024 }));
