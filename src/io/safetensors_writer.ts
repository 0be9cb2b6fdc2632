import { promises as fsp } from 'node:fs';
import type { SafetensorsDtype } from './safetensors_format.js';

/** One tensor to write: its name, shape, and a function producing its float32 data when its turn comes. */
export interface StreamedTensor {
  name: string;
  shape: number[];
  data: () => Promise<Float32Array> | Float32Array;
}

/**
 * Writes a safetensors file (all tensors F32) tensor by tensor: the header is computed from the shapes, then each
 * tensor's data is produced and written in turn, so memory holds one tensor at a time (files over 2 GB included).
 */
export async function writeSafetensorsStreaming(
  path: string,
  tensors: StreamedTensor[],
  metadata: Record<string, string> = { format: 'pt' },
): Promise<number> {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  const dtype: SafetensorsDtype = 'F32';
  for (const t of tensors) {
    const bytes = t.shape.reduce((a, b) => a * b, 1) * 4;
    header[t.name] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = JSON.stringify(header);
  const jsonLength = Buffer.byteLength(json);
  const headerBytes = Buffer.from(json + ' '.repeat((8 - (jsonLength % 8)) % 8));
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(headerBytes.length), 0);
  const handle = await fsp.open(path, 'w');
  try {
    await handle.write(prefix, 0, 8, 0);
    await handle.write(headerBytes, 0, headerBytes.length, 8);
    let pos = 8 + headerBytes.length;
    for (const t of tensors) {
      const data = await t.data();
      const n = t.shape.reduce((a, b) => a * b, 1);
      if (data.length !== n) {
        throw new Error(
          `${path}: tensor '${t.name}' has ${data.length} values, its shape [${t.shape.join(', ')}] needs ${n}`,
        );
      }
      const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      // write in chunks: one write call is limited to 2 GiB
      for (let done = 0; done < bytes.length;) {
        const len = Math.min(bytes.length - done, 1 << 30);
        await handle.write(bytes, done, len, pos);
        done += len;
        pos += len;
      }
    }
  } finally {
    await handle.close();
  }
  return 8 + headerBytes.length + offset;
}
