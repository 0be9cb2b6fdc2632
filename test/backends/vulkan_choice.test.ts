import { strict as assert } from 'node:assert';
import { type VulkanSituation, chooseVulkanDriver } from '../../src/backends/webgpu_node.js';

describe('webgpu in Node: which Vulkan driver Dawn gets, and the reason line', () => {
  const base: VulkanSituation = {
    pref: undefined,
    dir: '/repo/.vulkan',
    lavapipeInstalled: true,
    userDrivers: false,
    hardware: [],
  };
  const choose = (s: Partial<VulkanSituation>) => chooseVulkanDriver({ ...base, ...s });

  it('the local lavapipe where there is nothing else', () => {
    assert.deepEqual(choose({}), { driver: 'lavapipe', reason: 'lavapipe from /repo/.vulkan' });
  });

  it('a hardware driver or drivers the user chose win, also without a local lavapipe (no set-up hint then)', () => {
    const nvidia = ['/usr/share/vulkan/icd.d/nvidia_icd.json'];
    for (const lavapipeInstalled of [true, false]) {
      assert.deepEqual(choose({ hardware: nvidia, lavapipeInstalled }), {
        driver: 'system',
        reason: 'hardware Vulkan driver present (/usr/share/vulkan/icd.d/nvidia_icd.json)',
      });
      assert.deepEqual(choose({ userDrivers: true, lavapipeInstalled }), {
        driver: 'system',
        reason: 'VK_ICD_FILENAMES/VK_DRIVER_FILES already set',
      });
    }
  });

  it('the set-up hint only where no lavapipe and no other driver is there', () => {
    assert.deepEqual(choose({ lavapipeInstalled: false }), {
      driver: 'system',
      reason: 'no lavapipe in /repo/.vulkan (run scripts/setup-vulkan.sh)',
    });
    assert.match(
      choose({ lavapipeInstalled: false, pref: 'lavapipe', hardware: ['x.json'] }).reason,
      /no lavapipe/,
    );
  });

  it('SIGLIP2_VULKAN=lavapipe takes the local copy over hardware; =system always leaves the system alone', () => {
    assert.equal(
      choose({ pref: 'lavapipe', hardware: ['x.json'], userDrivers: true }).driver,
      'lavapipe',
    );
    assert.deepEqual(choose({ pref: 'system' }), {
      driver: 'system',
      reason: 'SIGLIP2_VULKAN=system',
    });
  });
});
