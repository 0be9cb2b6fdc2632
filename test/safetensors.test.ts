import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SafetensorsFile, encodeSafetensors, readSafetensors } from '../src/io/safetensors.js';
import { fixture } from './helpers/fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'siglip2-st-'));

function writeRaw(name: string, header: string, data: Uint8Array = new Uint8Array()): string {
  const h = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  const path = join(tmp, name);
  writeFileSync(path, out);
  return path;
}

describe('safetensors reader', () => {
  it('reads the fixture checkpoint header and tensors with their shapes', async () => {
    const file = await SafetensorsFile.open(fixture('siglip_tiny', 'model.safetensors'));
    try {
      const info = file.info('vision_model.embeddings.patch_embedding.weight');
      assert.deepEqual(info.shape, [48, 3, 16, 16]);
      const t = await file.read('logit_scale');
      assert.ok(Math.abs(t.data[0] - Math.log(10)) < 1e-6);
    } finally {
      await file.close();
    }
  });

  it('reads int64 inputs as int32', async () => {
    const inputs = await readSafetensors(fixture('siglip_tiny', 'inputs.safetensors'));
    const ids = inputs.get('input_ids');
    assert.ok(ids && ids.data instanceof Int32Array);
    assert.deepEqual(ids.shape, [3, 16]);
  });

  it('round-trips what encodeSafetensors writes', async () => {
    const path = join(tmp, 'rt.safetensors');
    const a = new Float32Array([1, -2.5, 3e-8, 4]);
    writeFileSync(path, encodeSafetensors([{ name: 'a', shape: [2, 2], data: a }]));
    const back = await readSafetensors(path);
    assert.deepEqual(Array.from(back.get('a')!.data), Array.from(a));
  });

  it('decodes F16 and BF16 to float32', async () => {
    const f16 = new Uint8Array(new Uint16Array([0x3c00, 0xc000, 0x3555]).buffer); // 1, -2, ~0.333
    const bf16 = new Uint8Array(new Uint16Array([0x3f80, 0xc040]).buffer); // 1, -3
    const header = JSON.stringify({
      h: { dtype: 'F16', shape: [3], data_offsets: [0, 6] },
      b: { dtype: 'BF16', shape: [2], data_offsets: [6, 10] },
    });
    const data = new Uint8Array(10);
    data.set(f16, 0);
    data.set(bf16, 6);
    const t = await readSafetensors(writeRaw('half.safetensors', header, data));
    assert.deepEqual(Array.from(t.get('h')!.data.slice(0, 2)), [1, -2]);
    assert.ok(Math.abs(t.get('h')!.data[2] - 0.33325195) < 1e-6);
    assert.deepEqual(Array.from(t.get('b')!.data), [1, -3]);
  });

  const bad: [string, () => string, RegExp][] = [
    [
      'a file shorter than the length prefix',
      () => {
        const p = join(tmp, 'short.safetensors');
        writeFileSync(p, new Uint8Array(3));
        return p;
      },
      /short\.safetensors: file is 3 bytes/,
    ],
    [
      'an absurd header length',
      () => {
        const p = join(tmp, 'absurd.safetensors');
        const b = new Uint8Array(16);
        new DataView(b.buffer).setBigUint64(0, 2n ** 60n, true);
        writeFileSync(p, b);
        return p;
      },
      /absurd\.safetensors: header length \d+ does not fit/,
    ],
    ['a header that is not JSON', () => writeRaw('notjson.safetensors', '{nope'), /not valid JSON/],
    [
      'offsets outside the file',
      () =>
        writeRaw(
          'outside.safetensors',
          JSON.stringify({ w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }),
          new Uint8Array(8),
        ),
      /tensor 'w': data_offsets \[0, 16\] point outside the data section \(8 bytes\)/,
    ],
    [
      'a size that does not match dtype x shape',
      () =>
        writeRaw(
          'size.safetensors',
          JSON.stringify({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }),
          new Uint8Array(8),
        ),
      /tensor 'w': holds 8 bytes but F32 \[3\] needs 12/,
    ],
    [
      'an unknown dtype',
      () =>
        writeRaw(
          'dtype.safetensors',
          JSON.stringify({ w: { dtype: 'F8_E4M3', shape: [1], data_offsets: [0, 1] } }),
          new Uint8Array(1),
        ),
      /tensor 'w': unknown dtype "F8_E4M3"/,
    ],
    [
      'overlapping tensors',
      () =>
        writeRaw(
          'overlap.safetensors',
          JSON.stringify({
            a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
            b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
          }),
          new Uint8Array(12),
        ),
      /tensors 'a' and 'b' overlap/,
    ],
  ];
  for (const [what, make, message] of bad) {
    it(`rejects ${what} with a message naming the file or tensor`, async () => {
      await assert.rejects(SafetensorsFile.open(make()), message);
    });
  }

  it('rejects a truncated file whose header promises more data', async () => {
    const path = writeRaw(
      'trunc.safetensors',
      JSON.stringify({ w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }),
      new Uint8Array(10),
    );
    await assert.rejects(SafetensorsFile.open(path), /trunc\.safetensors: tensor 'w'.*outside/);
  });

  it('names a missing tensor', async () => {
    const file = await SafetensorsFile.open(fixture('siglip_tiny', 'model.safetensors'));
    try {
      await assert.rejects(file.read('nope'), /model\.safetensors: no tensor named 'nope'/);
    } finally {
      await file.close();
    }
  });
});
