/**
 * Headless Chromium driven by playwright-core (an optional dependency, imported on first use; it never
 * downloads a browser): Debian's /usr/bin/chromium or $SIGLIP2_CHROMIUM, with the flags that work without a GPU
 * (WebGPU through SwiftShader).
 */
import { existsSync } from 'node:fs';
import type { Browser } from 'playwright-core';
import { dynamicImport } from '../backends/env.js';

const CHROMIUM = process.env.SIGLIP2_CHROMIUM ?? '/usr/bin/chromium';

/** Flags that work for headless Debian chromium without a GPU (WebGPU through SwiftShader needs the unsafe flag). */
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

/** Why Chromium cannot be driven here, or undefined when it can. */
export async function chromiumUnavailable(): Promise<string | undefined> {
  if (!existsSync(CHROMIUM))
    return `${CHROMIUM} not found (apt-get install chromium, or set SIGLIP2_CHROMIUM)`;
  try {
    await dynamicImport('playwright-core');
  } catch {
    return "the optional npm package 'playwright-core' is not installed (npm install playwright-core)";
  }
  return undefined;
}

/** Launches headless Chromium (a fresh temporary profile). */
export async function launchChromium(): Promise<Browser> {
  const why = await chromiumUnavailable();
  if (why !== undefined) throw new Error(`Chromium: ${why}`);
  const { chromium } = (await dynamicImport('playwright-core')) as typeof import('playwright-core');
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS, headless: true });
}
