/**
 * Writes a dense classifier (flatten, then dense layers with ReLU between them and softmax last) as an ONNX model,
 * protobuf field by field, so onnxruntime can serve the same weights a TensorFlow.js model holds.
 */

export interface DenseLayerWeights {
  /** inputs x units, row-major, as TensorFlow.js stores a dense kernel. */
  kernel: Float32Array;
  bias: Float32Array;
}

const FLOAT = 1, INT8 = 3;

function varint(value: number): number[] {
  const bytes: number[] = [];
  do {
    let byte = value % 128;
    value = Math.floor(value / 128);
    if (value > 0) byte |= 0x80;
    bytes.push(byte);
  } while (value > 0);
  return bytes;
}

const integerField = (number: number, value: number) => Buffer.from([...varint(number << 3), ...varint(value)]);
const bytesField = (number: number, bytes: Uint8Array) => Buffer.concat([Buffer.from([...varint((number << 3) | 2), ...varint(bytes.length)]), bytes]);
const stringField = (number: number, text: string) => bytesField(number, Buffer.from(text));
const message = (...parts: Buffer[]) => Buffer.concat(parts);

function tensor(name: string, dataType: number, dims: number[], data: ArrayBufferView): Buffer {
  return message(...dims.map((d) => integerField(1, d)), integerField(2, dataType), stringField(8, name), bytesField(9, new Uint8Array(data.buffer, data.byteOffset, data.byteLength)));
}

function node(opType: string, inputs: string[], outputs: string[]): Buffer {
  return message(...inputs.map((i) => stringField(1, i)), ...outputs.map((o) => stringField(2, o)), stringField(3, `${opType}_${outputs[0]}`), stringField(4, opType));
}

/** A float tensor value with a symbolic batch dimension first. */
function valueInfo(name: string, dims: number[]): Buffer {
  const dimensions = [bytesField(1, stringField(2, 'batch')), ...dims.map((d) => bytesField(1, integerField(1, d)))];
  const shape = message(...dimensions);
  return message(stringField(1, name), bytesField(2, bytesField(1, message(integerField(1, FLOAT), bytesField(2, shape)))));
}

/**
 * The ONNX model of a dense classifier over `imageShape` images. With `int8Kernels`, each kernel is stored as int8 with
 * one symmetric per-tensor scale and dequantized in the graph (DequantizeLinear), as a QDQ quantizer stores weights.
 */
export function denseClassifierOnnx(imageShape: number[], layers: DenseLayerWeights[], options: { int8Kernels?: boolean } = {}): Uint8Array {
  const nodes: Buffer[] = [node('Flatten', ['images'], ['flat'])];
  const initializers: Buffer[] = [];
  let previous = 'flat';
  let inputs = imageShape.reduce((a, b) => a * b, 1);
  layers.forEach(({ kernel, bias }, i) => {
    const units = bias.length;
    if (options.int8Kernels) {
      const scale = Math.max(...kernel.map(Math.abs)) / 127 || 1;
      const quantized = Int8Array.from(kernel, (w) => Math.round(w / scale));
      initializers.push(tensor(`kernel${i}_q`, INT8, [inputs, units], quantized), tensor(`kernel${i}_scale`, FLOAT, [], new Float32Array([scale])), tensor(`kernel${i}_zero`, INT8, [], new Int8Array(1)));
      nodes.push(node('DequantizeLinear', [`kernel${i}_q`, `kernel${i}_scale`, `kernel${i}_zero`], [`kernel${i}`]));
    } else initializers.push(tensor(`kernel${i}`, FLOAT, [inputs, units], kernel));
    initializers.push(tensor(`bias${i}`, FLOAT, [units], bias));
    const last = i === layers.length - 1;
    nodes.push(node('MatMul', [previous, `kernel${i}`], [`matmul${i}`]), node('Add', [`matmul${i}`, `bias${i}`], [`dense${i}`]));
    nodes.push(last ? node('Softmax', [`dense${i}`], ['probabilities']) : node('Relu', [`dense${i}`], [`relu${i}`]));
    previous = `relu${i}`;
    inputs = units;
  });
  const graph = message(
    ...nodes.map((n) => bytesField(1, n)),
    stringField(2, 'dense-classifier'),
    ...initializers.map((t) => bytesField(5, t)),
    bytesField(11, valueInfo('images', imageShape)),
    bytesField(12, valueInfo('probabilities', [layers.at(-1)!.bias.length])),
  );
  return message(integerField(1, 8), stringField(2, 'temporal-ml-tests'), bytesField(7, graph), bytesField(8, message(stringField(1, ''), integerField(2, 13))));
}
