import type { TensorFlow } from '../../lib/tf';

type Tensor3D = ReturnType<TensorFlow['tensor3d']>;

/** TensorFlow.js with tfjs-node's own image decoders (int32 tensors): the references decoders are checked against. */
export type TensorFlowNode = TensorFlow & {
  node: {
    decodeJpeg(contents: Uint8Array, channels: number, ratio: number, fancyUpscaling: boolean, tryRecoverTruncated: boolean, acceptableFraction: number, dctMethod: string): Tensor3D;
    decodePng(contents: Uint8Array, channels: number): Tensor3D;
    decodeImage(contents: Uint8Array, channels: number, dtype: 'int32', expandAnimations: boolean): Tensor3D;
  };
};
