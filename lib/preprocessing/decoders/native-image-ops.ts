import type * as tfjs from '@tensorflow/tfjs';
import { loadNativeBinding, type TensorFlow } from '../../tf';
import type { FastFormat } from './header';

/** The part of tfjs-node's native binding these ops use: TensorFlow eager ops on tensor handles of any dtype. */
export interface NativeBinding {
  executeOp(name: string, attrs: OpAttr[], inputs: number[], outputs: number): TensorMetadata[];
  createTensor(shape: number[], dtype: number, values: Int32Array | Uint8Array[]): number;
  deleteTensor(id: number): void;
  tensorDataSync(id: number): Int32Array;
  getNumOfTensors(): number;
  TF_UINT8: number;
  TF_INT32: number;
  TF_FLOAT: number;
  TF_STRING: number;
  TF_ATTR_INT: number;
  TF_ATTR_BOOL: number;
  TF_ATTR_FLOAT: number;
  TF_ATTR_STRING: number;
  TF_ATTR_TYPE: number;
}

interface OpAttr {
  name: string;
  type: number;
  value: number | boolean | string;
}

interface TensorMetadata {
  id: number;
  shape: number[];
  dtype: number;
}

/** A tensor handle of native TensorFlow, owned by the `NativeImageOps` that made it. */
export interface NativeTensor {
  id: number;
  shape: number[];
}

/** tfjs-node's backend, as far as wrapping a native handle into a tfjs tensor goes. */
interface NodeBackend {
  binding?: NativeBinding;
  createOutputTensor?(metadata: TensorMetadata): tfjs.Tensor;
}

/**
 * Image ops run on native TensorFlow's eager API through tfjs-node's binding, with TensorFlow's own dtypes. tfjs has
 * no uint8 tensors: through it, every decoded image is cast to int32 and read back at four bytes a value, into a
 * buffer allocated for the read (`dataSync`), and that read costs more than the resize (a third of a millisecond for
 * a 224x224x3 image). Here an image stays uint8 from the decoder to the read, which moves a quarter of the bytes.
 * Every handle made is deleted by `dispose()`.
 */
export class NativeImageOps {
  private readonly handles: number[] = [];

  private constructor(private readonly binding: NativeBinding) {}

  /** Ops on `binding`: tfjs-node's (see `bindingOf`, `loadBinding`), or a guarded one (see attribute-names.ts). */
  static open(binding: NativeBinding): NativeImageOps {
    return new NativeImageOps(binding);
  }

  /** tfjs-node's binding, loaded without TensorFlow.js; throws when tfjs-node does not load. */
  static loadBinding(): NativeBinding {
    const binding = loadNativeBinding() as Partial<NativeBinding>;
    if (typeof binding.executeOp !== 'function' || typeof binding.tensorDataSync !== 'function') throw new Error("tfjs-node's binding has no eager ops");
    return binding as NativeBinding;
  }

  /** The binding of TensorFlow.js' backend; throws when TensorFlow.js does not run on tfjs-node's native backend here. */
  static bindingOf(tf: TensorFlow): NativeBinding {
    const backend = tf.backend() as unknown as NodeBackend;
    if (!backend.binding || typeof backend.binding.executeOp !== 'function' || typeof backend.createOutputTensor !== 'function') {
      throw new Error(`TensorFlow.js runs on its ${tf.getBackend()} backend, not on native TensorFlow through tfjs-node`);
    }
    return backend.binding;
  }

  /** Native tensor handles alive in this thread (tfjs' and these ops'). */
  static liveHandles(binding: NativeBinding): number {
    return binding.getNumOfTensors();
  }

  /** The image as uint8 [height, width, channels] (channels as stored); `ratio` scales a JPEG down in its DCT. */
  decode(format: FastFormat, bytes: Uint8Array, ratio: 1 | 2 | 4 | 8): NativeTensor {
    const b = this.binding;
    const contents = this.keep(b.createTensor([], b.TF_STRING, [bytes]));
    switch (format) {
      case 'jpeg':
        return this.run('DecodeJpeg', [this.int('channels', 0), this.int('ratio', ratio), this.bool('fancy_upscaling', true), this.bool('try_recover_truncated', false), { name: 'acceptable_fraction', type: b.TF_ATTR_FLOAT, value: 1 }, { name: 'dct_method', type: b.TF_ATTR_STRING, value: 'INTEGER_ACCURATE' }], [contents]);
      case 'png':
        return this.run('DecodePng', [this.int('channels', 0), this.type('dtype', b.TF_UINT8)], [contents]);
      case 'bmp':
        return this.run('DecodeBmp', [this.int('channels', 0)], [contents]);
      case 'gif': {
        // [frames, height, width, 3]; only GIFs of one frame are sent here (see header.ts).
        const frames = this.run('DecodeGif', [], [contents]);
        if (frames.shape[0] !== 1) throw new Error(`GIF of ${frames.shape[0]} frames`);
        return this.reshape(frames, frames.shape.slice(1), b.TF_UINT8);
      }
    }
  }

  /** A uint8 image's bytes in row-major order. */
  read(image: NativeTensor): Uint8Array {
    const b = this.binding;
    const count = image.shape.reduce((n, d) => n * d, 1);
    // tensorDataSync reads int32, never uint8: the bytes, padded to a multiple of four, are reinterpreted as int32s in
    // place, a quarter of the values a cast would read.
    const padding = (4 - (count % 4)) % 4;
    const padded = padding === 0 ? image : this.padded(this.reshape(image, [count], b.TF_UINT8), padding);
    const words = this.reshape(padded, [(count + padding) / 4, 4], b.TF_UINT8);
    const packed = b.tensorDataSync(this.run('Bitcast', [this.type('T', b.TF_UINT8), this.type('type', b.TF_INT32)], [words.id]).id);
    return new Uint8Array(packed.buffer, packed.byteOffset, count);
  }

  /**
   * The image as an int32 tensor of `tf` (on the same binding), for the ops done through tfjs; tfjs owns it from then
   * on (dispose it, or tidy).
   */
  toTensor(image: NativeTensor, tf: TensorFlow): tfjs.Tensor {
    const b = this.binding;
    const backend = tf.backend() as unknown as NodeBackend;
    NativeImageOps.bindingOf(tf);
    const [metadata] = b.executeOp('Cast', this.castAttrs(b.TF_UINT8, b.TF_INT32), [image.id], 1);
    return backend.createOutputTensor!(metadata!);
  }

  dispose(): void {
    for (const id of this.handles.splice(0)) this.binding.deleteTensor(id);
  }

  private run(name: string, attrs: OpAttr[], inputs: number[]): NativeTensor {
    const [{ id, shape }] = this.binding.executeOp(name, attrs, inputs, 1) as [TensorMetadata];
    this.keep(id);
    return { id, shape };
  }

  private reshape(tensor: NativeTensor, shape: number[], dtype: number): NativeTensor {
    const b = this.binding;
    const to = this.keep(b.createTensor([shape.length], b.TF_INT32, Int32Array.from(shape)));
    return this.run('Reshape', [this.type('T', dtype), this.type('Tshape', b.TF_INT32)], [tensor.id, to]);
  }

  /** A vector of uint8 with `count` zeros after it. */
  private padded(vector: NativeTensor, count: number): NativeTensor {
    const b = this.binding;
    const paddings = this.keep(b.createTensor([1, 2], b.TF_INT32, Int32Array.of(0, count)));
    return this.run('Pad', [this.type('T', b.TF_UINT8), this.type('Tpaddings', b.TF_INT32)], [vector.id, paddings]);
  }

  private castAttrs(from: number, to: number): OpAttr[] {
    return [this.type('SrcT', from), this.type('DstT', to), this.bool('Truncate', false)];
  }

  private keep(id: number): number {
    this.handles.push(id);
    return id;
  }

  private int(name: string, value: number): OpAttr {
    return { name, type: this.binding.TF_ATTR_INT, value };
  }

  private bool(name: string, value: boolean): OpAttr {
    return { name, type: this.binding.TF_ATTR_BOOL, value };
  }

  private type(name: string, value: number): OpAttr {
    return { name, type: this.binding.TF_ATTR_TYPE, value };
  }
}
