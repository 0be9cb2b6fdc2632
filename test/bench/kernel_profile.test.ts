import { strict as assert } from 'node:assert';
import {
  matMulFlops,
  profileFlags,
  profileRows,
  type ProfiledKernel,
} from '../../bench/kernel_profile.js';

describe('bench: the per-kernel profile table', () => {
  it('counts a matMul from its shapes under whichever transposes make them fit', () => {
    type Case = [string, string, (number[] | null)[], number | undefined];
    const cases: Case[] = [
      [
        'only the plain reading fits',
        'BatchMatMul',
        [
          [2048, 1152],
          [1152, 4304],
        ],
        2 * 2048 * 1152 * 4304,
      ],
      [
        'dy W^T: only the transposed weight fits',
        'BatchMatMul',
        [
          [2048, 4304],
          [1152, 4304],
        ],
        2 * 2048 * 4304 * 1152,
      ],
      [
        'a square weight read either way',
        'MatMul',
        [
          [196, 768],
          [768, 768],
        ],
        2 * 196 * 768 * 768,
      ],
      // as TF.js lists it: batch dims of 1, the bias, and null for the PReLU weights it does not have
      [
        '_FusedMatMul',
        '_FusedMatMul',
        [[1, 2048, 1152], [1, 1152, 2304], [2304], null],
        2 * 2048 * 1152 * 2304,
      ],
      [
        'batch dims multiply and broadcast',
        'BatchMatMul',
        [
          [8, 16, 256, 72],
          [72, 200],
        ],
        2 * 128 * 256 * 200 * 72,
      ],
      [
        'plain and A transposed fit, with the same count',
        'BatchMatMul',
        [
          [64, 64],
          [64, 32],
        ],
        2 * 64 * 32 * 64,
      ],
      [
        'two readings fit with different counts',
        'BatchMatMul',
        [
          [32, 64],
          [32, 64],
        ],
        undefined,
      ],
      [
        'no reading fits',
        'BatchMatMul',
        [
          [3, 5],
          [7, 11],
        ],
        undefined,
      ],
      [
        'not a matMul',
        'Add',
        [
          [4, 4],
          [4, 4],
        ],
        undefined,
      ],
      ['an operand of rank 1', 'BatchMatMul', [[4], [4, 4]], undefined],
      [
        "the native backend's fused linear: x [B, N, D] and the kernel",
        'NativeFusedLinear',
        [[2, 196, 768], [768, 3072], [3072]],
        2 * 2 * 196 * 768 * 3072,
      ],
    ];
    for (const [what, name, shapes, flops] of cases)
      assert.equal(matMulFlops(name, shapes), flops, what);
  });

  it('adds up kernels by name or by shape, skips op scopes, and gives matMul rows their rate', async () => {
    const k = (name: string, inputShapes: number[][], ms: number): ProfiledKernel => ({
      name,
      inputShapes,
      kernelTimeMs: ms,
    });
    const kernels: ProfiledKernel[] = [
      k(
        'BatchMatMul',
        [
          [100, 200],
          [200, 300],
        ],
        2,
      ), // 12 MFLOP
      k(
        'BatchMatMul',
        [
          [100, 200],
          [200, 300],
        ],
        1,
      ),
      k(
        'BatchMatMul',
        [
          [10, 20],
          [20, 30],
        ],
        0.012,
      ), // 12 kFLOP
      k(
        'matMul__op',
        [
          [100, 200],
          [200, 300],
        ],
        3,
      ),
      k('unnamed scope', [], 5),
      k('Add', [[100], [100]], 0.5),
      { name: 'Add', inputShapes: [[100], [100]], kernelTimeMs: { error: 'no timer' } },
      { name: 'Exp', inputShapes: [[3]], kernelTimeMs: Promise.resolve(0.25) },
    ];
    const byName = await profileRows(kernels);
    assert.equal(byName.total, 3.762);
    assert.deepEqual(
      byName.rows.map((r) => [r.key, r.calls]),
      [
        ['BatchMatMul', 3],
        ['Add', 2],
        ['Exp', 1],
      ],
    );
    const mm = byName.rows[0];
    assert.ok(Math.abs((mm.gflops ?? 0) - (2 * 12e6 + 12e3) / 3.012 / 1e6) < 1e-9);
    assert.equal(byName.rows[1].gflops, undefined);

    const byShape = await profileRows(kernels, true);
    assert.deepEqual(
      byShape.rows.map((r) => [r.key, r.calls, r.gflops]),
      [
        ['BatchMatMul [[100,200],[200,300]]', 2, 24e6 / 3 / 1e6],
        ['Add [[100],[100]]', 2, undefined],
        ['Exp [[3]]', 1, undefined],
        ['BatchMatMul [[10,20],[20,30]]', 1, 12e3 / 0.012 / 1e6],
      ],
    );
  });

  it('reads --profile and --profile-shapes (which implies --profile)', () => {
    assert.deepEqual(profileFlags(['node', 'run.js']), { profile: false, byShape: false });
    assert.deepEqual(profileFlags(['--model', 'base', '--profile']), {
      profile: true,
      byShape: false,
    });
    assert.deepEqual(profileFlags(['--profile-shapes']), { profile: true, byShape: true });
  });
});
