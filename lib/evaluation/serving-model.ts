/** A stored model loaded into the runtime that serves it, behind the one interface evaluation scores and times. */
export interface ServingModel {
  /** e.g. `tfjs-node`, `onnxruntime-node`. */
  runtime: string;
  /** Class probabilities (count x classes, row-major) for `count` images laid out NHWC in `images`. */
  predict(images: Float32Array, count: number): Promise<Float32Array>;
  parameterCount: number;
  nonZeroParameters: number;
  dispose(): Promise<void> | void;
}
