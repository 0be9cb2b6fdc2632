/**
 * A small ONNX graph writer for the peer benchmark: nodes, float32 initializers streamed into one external-data
 * file (page-aligned, so onnxruntime can map it), and the model file beside it. Only what the SigLIP towers need.
 */
import onnxProto from 'onnx-proto';
import { closeSync, openSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import { basename } from 'node:path';
import { fillUniform } from '../xorshift.js';

const { onnx } = onnxProto;

/** A dimension: a number, or a name for a free (dynamic) one. */
export type Dim = number | string;

const PAGE = 4096;

export class OnnxGraph {
  private readonly nodes: onnxProto.onnx.INodeProto[] = [];
  private readonly initializers: onnxProto.onnx.ITensorProto[] = [];
  private readonly inputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly outputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly fd: number;
  private offset = 0;
  private counter = 0;
  private seed = 1234;

  /** `dataPath`: the external-data file the initializers are written to (created, truncated). */
  constructor(private readonly dataPath: string) {
    this.fd = openSync(`${dataPath}.partial`, 'w');
  }

  /** A fresh value name. */
  private name(prefix: string): string {
    return `${prefix}_${this.counter++}`;
  }

  input(name: string, elemType: 'float' | 'int64', dims: Dim[]): string {
    this.inputs.push(valueInfo(name, elemType, dims));
    return name;
  }

  output(name: string, elemType: 'float' | 'int64', dims: Dim[]): void {
    this.outputs.push(valueInfo(name, elemType, dims));
  }

  /** A float32 initializer of pseudo-random values (uniform, ±0.02; `around` shifts them, e.g. 1 for LayerNorm scales). */
  weight(prefix: string, dims: number[], around = 0): string {
    const n = dims.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    this.seed = fillUniform(data, this.seed, around, 0.04);
    return this.floatTensor(prefix, dims, data);
  }

  /** A float32 initializer with the given values, in the external-data file. */
  floatTensor(prefix: string, dims: number[], data: Float32Array): string {
    const name = this.name(prefix);
    const pad = (PAGE - (this.offset % PAGE)) % PAGE;
    if (pad > 0) writeSync(this.fd, new Uint8Array(pad));
    this.offset += pad;
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    for (let at = 0; at < bytes.length; at += 1 << 30) {
      writeSync(this.fd, bytes.subarray(at, Math.min(bytes.length, at + (1 << 30))));
    }
    this.initializers.push({
      name,
      dims,
      dataType: onnx.TensorProto.DataType.FLOAT,
      dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [
        { key: 'location', value: basename(this.dataPath) },
        { key: 'offset', value: String(this.offset) },
        { key: 'length', value: String(bytes.length) },
      ],
    });
    this.offset += bytes.length;
    return name;
  }

  /** A small int64 initializer stored inline (shapes, axes, indices). */
  int64s(prefix: string, values: number[], dims: number[] = [values.length]): string {
    const name = this.name(prefix);
    this.initializers.push({
      name,
      dims,
      dataType: onnx.TensorProto.DataType.INT64,
      int64Data: values,
    });
    return name;
  }

  /** A float scalar stored inline. */
  scalar(prefix: string, value: number): string {
    const name = this.name(prefix);
    this.initializers.push({
      name,
      dims: [],
      dataType: onnx.TensorProto.DataType.FLOAT,
      floatData: [value],
    });
    return name;
  }

  /** Adds a node; returns its (first) output's name, or `out` when given. */
  node(
    opType: string,
    inputs: string[],
    attributes: Record<string, number | number[]> = {},
    out?: string,
  ): string {
    const output = out ?? this.name(opType.toLowerCase());
    this.nodes.push({
      opType,
      input: inputs,
      output: [output],
      name: this.name(`n_${opType}`),
      attribute: Object.entries(attributes).map(([k, v]) => attribute(k, v)),
    });
    return output;
  }

  /** Closes the data file and writes the model (opset 17) to `modelPath`, in the data file's folder. */
  finish(modelPath: string): void {
    closeSync(this.fd);
    renameSync(`${this.dataPath}.partial`, this.dataPath);
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: 'siglip2-tfjs bench/peer',
      opsetImport: [{ domain: '', version: 17 }],
      graph: {
        name: 'siglip',
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      },
    });
    writeFileSync(modelPath, onnx.ModelProto.encode(model).finish());
  }
}

function valueInfo(
  name: string,
  elemType: 'float' | 'int64',
  dims: Dim[],
): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType:
          elemType === 'float' ? onnx.TensorProto.DataType.FLOAT : onnx.TensorProto.DataType.INT64,
        shape: {
          dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })),
        },
      },
    },
  };
}

function attribute(name: string, v: number | number[]): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (Array.isArray(v)) return { name, type: T.INTS, ints: v };
  if (Number.isInteger(v) && !['epsilon', 'alpha', 'beta'].includes(name)) {
    return { name, type: T.INT, i: v };
  }
  return { name, type: T.FLOAT, f: v };
}
