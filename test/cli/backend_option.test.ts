import assert from 'node:assert/strict';
import { selectBackend } from '../../src/cli/backend_option.js';
import { buildProgram } from '../../src/cli/program.js';

describe('CLI --backend', () => {
  it('every command has a --backend option', () => {
    const commands = buildProgram().commands;
    assert.ok(commands.length >= 4);
    for (const c of commands) {
      assert.ok(
        c.options.some((o) => o.long === '--backend'),
        `siglip2 ${c.name()} has no --backend option`,
      );
    }
  });

  it('selects the backend and reports why in one line; rejects unknown names', async () => {
    const r = await selectBackend({ backend: 'cpu' }, true);
    assert.equal(r.name, 'cpu');
    assert.doesNotMatch(r.reason, /\n/);
    await assert.rejects(
      selectBackend({ backend: 'gpu' }, true),
      /--backend gpu: expected one of auto, cpu, wasm, webgpu, tensorflow/,
    );
  });
});
