import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createProgressRenderer, formatBytes } from '../../src/hub/progress.js';

class FakeTerminal extends Writable {
  text = '';
  isTTY: boolean;
  columns = 120;
  constructor(tty: boolean) {
    super();
    this.isTTY = tty;
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

describe('hub progress renderer', () => {
  it('draws one cli-progress bar per file on a TTY', () => {
    const term = new FakeTerminal(true);
    const r = createProgressRenderer({ stream: term });
    assert.equal(r.active, true);
    r.onProgress({ file: 'model.safetensors', loaded: 0, total: 822128 });
    r.onProgress({ file: 'config.json', loaded: 727, total: 727 });
    r.onProgress({ file: 'model.safetensors', loaded: 822128, total: 822128 });
    r.stop();
    r.stop();
    // eslint-disable-next-line no-control-regex
    const plain = term.text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
    assert.match(plain, /100% \| 822 kB\/822 kB \| model\.safetensors/);
    assert.match(plain, /100% \| 727 B\/727 B \| config\.json/);
  });

  it('stays quiet when the stream is not a TTY', () => {
    const log = new FakeTerminal(false);
    const r = createProgressRenderer({ stream: log });
    assert.equal(r.active, false);
    r.onProgress({ file: 'model.safetensors', loaded: 10, total: 20 });
    r.stop();
    assert.equal(log.text, '');
  });

  it('formats byte counts in decimal units', () => {
    assert.equal(formatBytes(17), '17 B');
    assert.equal(formatBytes(822128), '822 kB');
    assert.equal(formatBytes(1_136_000_000), '1.14 GB');
    assert.equal(formatBytes(45_600_000), '45.6 MB');
  });
});
