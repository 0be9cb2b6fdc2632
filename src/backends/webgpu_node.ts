/**
 * WebGPU in Node.js through the npm `webgpu` package (Dawn's dawn.node).
 *
 * On a machine without a GPU, scripts/setup-vulkan.sh unpacks Mesa 25's lavapipe into <repo>/.vulkan (or
 * $SIGLIP2_VULKAN_DIR). To use it without a wrapper script, this module points the Vulkan loader at its ICD file
 * (VK_ICD_FILENAMES / VK_DRIVER_FILES, read by the loader when Dawn creates its instance) and pre-loads the
 * unpacked libvulkan.so.1, libdrm*.so and libgallium*.so by absolute path with RTLD_NODELETE. LD_LIBRARY_PATH
 * cannot be used from inside the process: the dynamic linker reads it once at start-up. Libraries already loaded
 * are matched by soname, so Dawn's later dlopen("libvulkan.so.1") and lavapipe's own dependencies resolve to
 * the unpacked copies. Another program can use the same lavapipe with VK_ICD_FILENAMES=<dir>/icd.json and
 * LD_LIBRARY_PATH set to the folder named in <dir>/libdir.
 *
 * Dawn keeps Node's event loop alive once an instance exists: programs that use it must call process.exit()
 * (mocha runs with --exit).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dynamicImport } from './env.js';

/** glibc's RTLD_NODELETE (not exposed in os.constants.dlopen). */
const RTLD_NODELETE = 0x1000;

/** Where the lavapipe copy lives: $SIGLIP2_VULKAN_DIR or <package root>/.vulkan. */
function vulkanDir(): string {
  const env = process.env.SIGLIP2_VULKAN_DIR;
  if (env) return resolve(env);
  // this file is <root>/dist/src/backends/webgpu_node.js (or <root>/src/backends/webgpu_node.ts under a loader)
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    if (existsSync(join(dir, 'package.json'))) break;
    dir = dirname(dir);
  }
  return join(dir, '.vulkan');
}

/** ICD json files of Vulkan drivers installed on the system that are not software rasterizers. */
export function systemHardwareIcds(): string[] {
  const dirs = ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d', '/usr/local/share/vulkan/icd.d'];
  const found: string[] = [];
  for (const d of dirs) {
    if (!existsSync(d)) continue;
    for (const f of readdirSync(d)) {
      if (f.endsWith('.json') && !/lvp|swiftshader/i.test(f)) found.push(join(d, f));
    }
  }
  return found;
}

export interface VulkanChoice {
  /** 'lavapipe' when the project-local copy was selected, 'system' otherwise. */
  driver: 'lavapipe' | 'system';
  reason: string;
}

let applied: VulkanChoice | undefined;

/** What the driver choice depends on (see applyVulkanEnvironment). */
export interface VulkanSituation {
  /** SIGLIP2_VULKAN: 'system', 'lavapipe' or unset. */
  pref: string | undefined;
  /** The project-local lavapipe folder, and whether its icd.json exists. */
  dir: string;
  lavapipeInstalled: boolean;
  /** VK_ICD_FILENAMES or VK_DRIVER_FILES is set by the user. */
  userDrivers: boolean;
  /** Hardware Vulkan driver manifests of the system. */
  hardware: string[];
}

/**
 * The driver Dawn should use, and why. A hardware driver (or drivers the user chose) wins over the local lavapipe
 * unless SIGLIP2_VULKAN=lavapipe; only where neither is there does a missing lavapipe get the set-up hint.
 */
export function chooseVulkanDriver(s: VulkanSituation): VulkanChoice {
  if (s.pref === 'system') return { driver: 'system', reason: 'SIGLIP2_VULKAN=system' };
  if (s.pref !== 'lavapipe' && s.userDrivers) {
    return { driver: 'system', reason: 'VK_ICD_FILENAMES/VK_DRIVER_FILES already set' };
  }
  if (s.pref !== 'lavapipe' && s.hardware.length > 0) {
    return {
      driver: 'system',
      reason: `hardware Vulkan driver present (${s.hardware.join(', ')})`,
    };
  }
  if (!s.lavapipeInstalled) {
    return { driver: 'system', reason: `no lavapipe in ${s.dir} (run scripts/setup-vulkan.sh)` };
  }
  return { driver: 'lavapipe', reason: `lavapipe from ${s.dir}` };
}

/**
 * Selects the Vulkan driver for Dawn. The project-local lavapipe is used when it exists, the user has not chosen
 * drivers through VK_ICD_FILENAMES / VK_DRIVER_FILES, and the system has no hardware Vulkan driver (or
 * SIGLIP2_VULKAN=lavapipe). SIGLIP2_VULKAN=system always leaves the system alone.
 */
export function applyVulkanEnvironment(): VulkanChoice {
  if (applied) return applied;
  const dir = vulkanDir();
  const icd = join(dir, 'icd.json');
  const choice = chooseVulkanDriver({
    pref: process.env.SIGLIP2_VULKAN,
    dir,
    lavapipeInstalled: existsSync(icd),
    userDrivers: Boolean(process.env.VK_ICD_FILENAMES || process.env.VK_DRIVER_FILES),
    hardware: systemHardwareIcds(),
  });
  if (choice.driver === 'lavapipe') {
    process.env.VK_ICD_FILENAMES = icd;
    process.env.VK_DRIVER_FILES = icd;
    preloadLibraries(readFileSync(join(dir, 'libdir'), 'utf8').trim());
  }
  if (!process.env.XDG_RUNTIME_DIR) {
    const runtime = join(os.tmpdir(), `siglip2-xdg-${process.getuid?.() ?? 'user'}`);
    mkdirSync(runtime, { recursive: true, mode: 0o700 });
    process.env.XDG_RUNTIME_DIR = runtime;
  }
  applied = choice;
  return choice;
}

/** dlopen()s the unpacked libraries by absolute path so that later lookups by soname find them. */
function preloadLibraries(libdir: string): void {
  const files = readdirSync(libdir);
  const wanted = [
    ...files
      .filter((f) => /^libdrm(_[a-z]+)?\.so\.\d+$/.test(f))
      .sort((a, b) => a.length - b.length),
    ...files.filter((f) => /^libgallium.*\.so$/.test(f)),
    'libvulkan.so.1',
  ];
  const flags = os.constants.dlopen.RTLD_NOW | os.constants.dlopen.RTLD_GLOBAL | RTLD_NODELETE;
  for (const lib of wanted) {
    const path = join(libdir, lib);
    if (!existsSync(path)) continue;
    try {
      process.dlopen({ exports: {} }, path, flags);
    } catch (e) {
      // Not a Node addon, so Node complains after loading it; RTLD_NODELETE keeps it loaded.
      if (!/did not self-register/.test((e as Error).message)) {
        throw new Error(`Could not load ${path} for lavapipe: ${(e as Error).message}`, {
          cause: e,
        });
      }
    }
  }
}

interface DawnModule {
  create(options: string[]): GPU;
  globals: Record<string, unknown>;
}

let gpu: GPU | undefined;

/**
 * Sets up navigator.gpu (and the WebGPU globals such as GPUBufferUsage) from Dawn, which the TF.js webgpu backend
 * needs before it is imported. Returns undefined when the `webgpu` package is not installed.
 */
export async function installNodeWebGPU(): Promise<{ gpu: GPU; vulkan: VulkanChoice } | undefined> {
  const vulkan = applyVulkanEnvironment();
  if (gpu === undefined) {
    let dawn: DawnModule;
    try {
      dawn = (await dynamicImport('webgpu')) as DawnModule;
    } catch {
      return undefined;
    }
    for (const [k, v] of Object.entries(dawn.globals)) {
      if (!(k in globalThis))
        Object.defineProperty(globalThis, k, { value: v, configurable: true, writable: true });
    }
    gpu = dawn.create([]);
    const nav = (globalThis as { navigator?: object }).navigator;
    if (nav === undefined) {
      Object.defineProperty(globalThis, 'navigator', {
        value: { gpu },
        configurable: true,
        writable: true,
      });
    } else {
      Object.defineProperty(nav, 'gpu', { value: gpu, configurable: true });
    }
  }
  return { gpu, vulkan };
}
