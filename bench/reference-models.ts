import { modelSpecSchema, type ModelSpec } from '../lib/schemas/model';

/** The reference architectures the benchmarks compare across runtimes (bench/keras_bench.py mirrors them). */
export const REFERENCE_MODELS: Record<'mlp' | 'cnn', ModelSpec> = {
  mlp: modelSpecSchema.parse({ architecture: 'mlp', hiddenUnits: [256, 128], dropout: 0.2 }),
  cnn: modelSpecSchema.parse({ architecture: 'cnn', filters: [32, 64], kernelSize: 3, hiddenUnits: [128], dropout: 0.2 }),
};

export const FASHION_MNIST_SHAPE = { height: 28, width: 28, channels: 1 } as const;
export const NUM_CLASSES = 10;
