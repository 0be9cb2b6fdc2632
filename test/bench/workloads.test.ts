import { strict as assert } from 'node:assert';
import { towerChildArgs } from '../../bench/workloads.js';

describe('bench: one process per tower', () => {
  it("drops the caller's own --tower, so a child never spawns children of its own", () => {
    assert.deepEqual(
      towerChildArgs(['--backend', 'native', '--tower', 'both', '--runs', '3'], 'vision'),
      ['--backend', 'native', '--runs', '3', '--tower', 'vision'],
    );
    assert.deepEqual(towerChildArgs(['--model', 'base'], 'text'), [
      '--model',
      'base',
      '--tower',
      'text',
    ]);
  });
});
