/**
 * Counts the parameters of an ONNX model from its bytes. onnxruntime does not expose a session's initializers, so the
 * few protobuf fields this needs (ModelProto.graph, GraphProto.node and .initializer, NodeProto.input and .op_type,
 * TensorProto.dims, .data_type and its data) are read here from the wire format.
 */

export interface ParameterCounts {
  parameterCount: number;
  nonZeroParameters: number;
}

/** One field of a protobuf message: varint fields carry `value`, length-delimited ones `bytes`; other wire types are skipped. */
interface Field {
  number: number;
  value?: bigint;
  bytes?: Uint8Array;
}

function readVarint(buffer: Uint8Array, at: { offset: number }): bigint {
  let result = 0n;
  for (let shift = 0n; ; shift += 7n) {
    if (at.offset >= buffer.length) throw new Error('the ONNX model ends inside a varint');
    const byte = buffer[at.offset++]!;
    result |= BigInt(byte & 0x7f) << shift;
    if (byte < 0x80) return result;
  }
}

function* fields(message: Uint8Array): Generator<Field> {
  const at = { offset: 0 };
  while (at.offset < message.length) {
    const key = Number(readVarint(message, at));
    const number = key >>> 3;
    switch (key & 7) {
      case 0:
        yield { number, value: readVarint(message, at) };
        break;
      case 1:
        at.offset += 8;
        break;
      case 2: {
        const length = Number(readVarint(message, at));
        if (at.offset + length > message.length) throw new Error('the ONNX model ends inside a field');
        yield { number, bytes: message.subarray(at.offset, at.offset + length) };
        at.offset += length;
        break;
      }
      case 5:
        at.offset += 4;
        break;
      default:
        throw new Error(`the ONNX model holds an unsupported protobuf wire type ${key & 7}`);
    }
  }
}

/** A repeated scalar field, packed (one length-delimited field) or not (one field per value). */
function varints(message: Uint8Array, number: number): bigint[] {
  const values: bigint[] = [];
  for (const field of fields(message)) {
    if (field.number !== number) continue;
    if (field.value !== undefined) values.push(field.value);
    else if (field.bytes) for (const at = { offset: 0 }; at.offset < field.bytes.length; ) values.push(readVarint(field.bytes, at));
  }
  return values;
}

const text = (bytes: Uint8Array) => Buffer.from(bytes).toString('utf8');

// TensorProto.DataType values.
const FLOAT = 1, UINT8 = 2, INT8 = 3, UINT16 = 4, INT16 = 5, INT32 = 6, INT64 = 7, FLOAT16 = 10, DOUBLE = 11, BFLOAT16 = 16;
const BYTES_PER_ELEMENT: Record<number, number> = { [FLOAT]: 4, [UINT8]: 1, [INT8]: 1, [UINT16]: 2, [INT16]: 2, [INT32]: 4, [FLOAT16]: 2, [DOUBLE]: 8, [BFLOAT16]: 2 };

/**
 * Inputs that hold quantization scales and zero points, by operator: these describe how weights are stored, they are
 * not weights themselves.
 */
const QUANTIZATION_INPUTS: Record<string, number[]> = {
  QuantizeLinear: [1, 2],
  DequantizeLinear: [1, 2],
  QLinearConv: [1, 2, 4, 5, 6, 7],
  QLinearMatMul: [1, 2, 4, 5, 6, 7],
  QLinearAdd: [1, 2, 4, 5, 6, 7],
  QGemm: [1, 2, 4, 5, 7, 8],
  MatMulInteger: [2, 3],
  ConvInteger: [2, 3],
};

interface Initializer {
  name: string;
  dataType: number;
  elements: number;
  tensor: Uint8Array;
}

function initializerOf(tensor: Uint8Array): Initializer {
  let name = '';
  let dataType = 0;
  for (const field of fields(tensor)) {
    if (field.number === 8 && field.bytes) name = text(field.bytes);
    else if (field.number === 2 && field.value !== undefined) dataType = Number(field.value);
  }
  const elements = varints(tensor, 1).reduce((n, d) => n * Number(d), 1);
  return { name, dataType, elements, tensor };
}

/** Elements of `initializer` that are not zero (-0 is zero), whichever field its data is stored in. */
function nonZeroElements({ name, dataType, elements, tensor }: Initializer): number {
  for (const field of fields(tensor)) {
    if (field.number === 14 && field.value === 1n) throw new Error(`the ONNX initializer ${name} keeps its data in an external file; store the model as one file`);
  }
  let count = 0;
  const raw = [...fields(tensor)].find((f) => f.number === 9)?.bytes;
  if (raw) {
    const size = BYTES_PER_ELEMENT[dataType];
    if (!size || raw.length !== size * elements) throw new Error(`the ONNX initializer ${name} has ${raw.length} bytes of data type ${dataType} for ${elements} elements`);
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    for (let i = 0; i < elements; i++) {
      const zero =
        dataType === FLOAT ? view.getFloat32(i * 4, true) === 0
        : dataType === DOUBLE ? view.getFloat64(i * 8, true) === 0
        : size === 2 && dataType !== INT16 && dataType !== UINT16 ? (view.getUint16(i * 2, true) & 0x7fff) === 0
        : raw.subarray(i * size, (i + 1) * size).every((b) => b === 0);
      if (!zero) count++;
    }
    return count;
  }
  for (const field of fields(tensor)) {
    if (field.number === 4 && field.bytes) {
      // float_data: packed little-endian floats.
      const view = new DataView(field.bytes.buffer, field.bytes.byteOffset, field.bytes.byteLength);
      for (let i = 0; i < field.bytes.byteLength / 4; i++) if (view.getFloat32(i * 4, true) !== 0) count++;
    }
  }
  // int32_data holds int32 and the narrower integer and float16 types, one varint each.
  for (const value of varints(tensor, 5)) if ((dataType === FLOAT16 || dataType === BFLOAT16 ? value & 0x7fffn : value) !== 0n) count++;
  return count;
}

/**
 * Parameters of an ONNX model: the elements of its weight and bias initializers. Quantization scales and zero points
 * and 64-bit integer initializers (shapes, axes) are not counted, so a model and its int8 version count the same.
 * A non-zero parameter is one whose stored value is not 0 (for symmetric int8 weights, a dequantized value not 0).
 */
export function onnxParameterCounts(model: Uint8Array): ParameterCounts {
  const graph = [...fields(model)].find((f) => f.number === 7)?.bytes;
  if (!graph) throw new Error('the ONNX model has no graph');
  const initializers: Initializer[] = [];
  const quantizationNames = new Set<string>();
  for (const field of fields(graph)) {
    if (field.number === 5 && field.bytes) initializers.push(initializerOf(field.bytes));
    else if (field.number === 1 && field.bytes) {
      const nodeFields = [...fields(field.bytes)];
      const opType = text(nodeFields.find((f) => f.number === 4)?.bytes ?? new Uint8Array());
      const inputs = nodeFields.filter((f) => f.number === 1).map((f) => text(f.bytes!));
      for (const index of QUANTIZATION_INPUTS[opType] ?? []) if (inputs[index]) quantizationNames.add(inputs[index]);
    }
  }
  const weights = initializers.filter((i) => i.dataType !== INT64 && !quantizationNames.has(i.name));
  return {
    parameterCount: weights.reduce((n, i) => n + i.elements, 0),
    nonZeroParameters: weights.reduce((n, i) => n + nonZeroElements(i), 0),
  };
}
