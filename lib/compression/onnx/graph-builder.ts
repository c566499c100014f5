import { AttributeType, DataType, type AttributeProto, type DataTypeCode, type ModelProto, type NodeProto, type TensorProto, type ValueInfoProto } from './onnx-proto';

/** The default-domain opset the exported graphs use; `com.microsoft` ops come from onnxruntime's contrib opset 1. */
export const OPSET = 13;
const IR_VERSION = 7;

export type AttributeValue = number | number[];
type TypedArray = Float32Array | Uint8Array | Int8Array | Int32Array;

function attribute(name: string, value: AttributeValue): AttributeProto {
  return typeof value === 'number' ? { name, type: AttributeType.INT, i: value } : { name, type: AttributeType.INTS, ints: value };
}

function dataTypeOf(data: TypedArray): DataTypeCode {
  if (data instanceof Float32Array) return DataType.FLOAT;
  if (data instanceof Uint8Array) return DataType.UINT8;
  if (data instanceof Int8Array) return DataType.INT8;
  return DataType.INT32;
}

/** A float32 tensor's declared type; without `shape`, its rank is left open. */
function valueInfo(name: string, shape?: (number | string)[]): ValueInfoProto {
  const dim = shape?.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d }));
  return { name, type: { tensorType: { elemType: DataType.FLOAT, ...(dim ? { shape: { dim } } : {}) } } };
}

/** Builds one ONNX graph: constant tensors, nodes in topological order, named inputs and outputs. */
export class GraphBuilder {
  private readonly nodes: NodeProto[] = [];
  private readonly initializers: TensorProto[] = [];
  private readonly inputs: ValueInfoProto[] = [];
  private readonly outputs: ValueInfoProto[] = [];
  private readonly usedNames = new Set<string>();

  /** A tensor name not used before, derived from `base`. */
  name(base: string): string {
    let name = base;
    for (let i = 1; this.usedNames.has(name); i++) name = `${base}_${i}`;
    this.usedNames.add(name);
    return name;
  }

  input(name: string, shape: (number | string)[]): string {
    const unique = this.name(name);
    this.inputs.push(valueInfo(unique, shape));
    return unique;
  }

  /** Declares a float32 graph output. */
  output(name: string, shape?: (number | string)[]): void {
    this.outputs.push(valueInfo(name, shape));
  }

  /** A constant tensor; returns its name. */
  constant(name: string, dims: number[], data: TypedArray): string {
    const unique = this.name(name);
    const rawData = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    this.initializers.push({ name: unique, dims, dataType: dataTypeOf(data), rawData: Uint8Array.from(rawData) });
    return unique;
  }

  /** Adds a node with one output, named after `outputBase`; returns the output's name. */
  node(opType: string, inputs: string[], outputBase: string, attributes: Record<string, AttributeValue> = {}, domain?: string): string {
    const output = this.name(outputBase);
    this.nodes.push({
      name: output,
      opType,
      ...(domain ? { domain } : {}),
      input: inputs,
      output: [output],
      attribute: Object.entries(attributes).map(([key, value]) => attribute(key, value)),
    });
    return output;
  }

  /** Node counts by op type, for reports. */
  opCounts(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const node of this.nodes) counts[node.opType] = (counts[node.opType] ?? 0) + 1;
    return counts;
  }

  build(graphName: string): ModelProto {
    const usesContrib = this.nodes.some((n) => n.domain === 'com.microsoft');
    return {
      irVersion: IR_VERSION,
      producerName: 'temporal-ml',
      producerVersion: '0.1.0',
      opsetImport: [{ domain: '', version: OPSET }, ...(usesContrib ? [{ domain: 'com.microsoft', version: 1 }] : [])],
      graph: { name: graphName, node: this.nodes, initializer: this.initializers, input: this.inputs, output: this.outputs },
    };
  }
}
