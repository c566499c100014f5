import { z } from 'zod';
import { modelSpecSchema, trainingSpecSchema } from './model';

const sparsity = z.number().min(0).max(0.99);

/** Fine-tuning after pruning: a short, low-rate continuation of the original training. */
const fineTuningSchema = (epochs: number) =>
  z
    .strictObject({
      epochs: z.int().min(1).max(100).default(epochs),
      batchSize: z.int().min(1).max(8192).default(64),
      learningRate: z.number().positive().max(1).default(0.0005),
      seed: z.int().min(0).max(2 ** 31 - 1).default(42),
    })
    .prefault({});

/** Weights stored as float16, or as uint8/uint16 with a per-tensor affine map, in the stock TensorFlow.js format. */
export const quantizeVariantSchema = z.strictObject({
  method: z.literal('quantize'),
  name: z.string().min(1).max(64).optional(),
  dtype: z.enum(['float16', 'uint8', 'uint16']).default('uint8'),
});

/** The model exported to ONNX as it is (float32): the reference the integer model is timed against. */
export const onnxVariantSchema = z.strictObject({
  method: z.literal('onnx'),
  name: z.string().min(1).max(64).optional(),
});

/** ONNX with int8 weights (per channel, symmetric) and 8-bit activations calibrated on training images. */
export const int8VariantSchema = z.strictObject({
  method: z.literal('int8'),
  name: z.string().min(1).max(64).optional(),
  activations: z.enum(['uint8', 'int8']).default('uint8'),
  calibration: z
    .strictObject({
      method: z.enum(['minmax', 'percentile']).default('minmax'),
      /** With `percentile`: the share of each activation's values kept inside its range. */
      percentile: z.number().min(90).max(100).default(99.99),
      /** Training images the ranges are measured on. */
      samples: z.int().min(1).max(10_000).default(512),
    })
    .prefault({}),
  format: z.enum(['qdq', 'qoperator']).default('qdq'),
});

/** Gradual magnitude pruning during fine-tuning, sparsity rising along a polynomial schedule. */
export const pruneVariantSchema = z
  .strictObject({
    method: z.literal('prune'),
    name: z.string().min(1).max(64).optional(),
    initialSparsity: sparsity.default(0),
    finalSparsity: sparsity.default(0.8),
    beginStep: z.int().min(0).default(0),
    /** Step at which `finalSparsity` is reached; by default 70% of the way through fine-tuning. */
    endStep: z.int().min(1).nullable().default(null),
    frequency: z.int().min(1).default(50),
    power: z.number().positive().default(3),
    // Two epochs left 80% sparsity 2 points below the original on Fashion-MNIST; four brought it within 1.
    fineTuning: fineTuningSchema(4),
  })
  .refine((v) => v.initialSparsity <= v.finalSparsity, { path: ['finalSparsity'], message: 'must be at least initialSparsity' })
  .refine((v) => v.endStep === null || v.endStep > v.beginStep, { path: ['endStep'], message: 'must be after beginStep' });

/** Whole dense units and convolution filters removed by L1 norm, the smaller model rebuilt and fine-tuned. */
export const structuredPruneVariantSchema = z.strictObject({
  method: z.literal('structured-prune'),
  name: z.string().min(1).max(64).optional(),
  /** Share of units and filters removed from every hidden layer. */
  fraction: sparsity.default(0.5),
  fineTuning: fineTuningSchema(2),
});

/** A smaller student trained on the teacher's softened outputs (Hinton et al. 2015). */
export const distillVariantSchema = z.strictObject({
  method: z.literal('distill'),
  name: z.string().min(1).max(64).optional(),
  student: modelSpecSchema.prefault({ architecture: 'cnn', filters: [8, 16], hiddenUnits: [32] }),
  temperature: z.number().positive().max(100).default(4),
  /** Weight of the soft (teacher) loss; the hard-label loss gets 1 - alpha. */
  alpha: z.number().min(0).max(1).default(0.9),
  training: trainingSpecSchema.prefault({ epochs: 5 }),
  /** Also train the same student on the labels alone, so the table shows what distillation gained. */
  compareWithoutDistillation: z.boolean().default(true),
});

// Told apart by `method`, so an error names the field of the method asked for, and an unknown method is named as such.
const stepSchema = z.discriminatedUnion('method', [quantizeVariantSchema, onnxVariantSchema, int8VariantSchema, pruneVariantSchema, structuredPruneVariantSchema, distillVariantSchema]);

/** Steps applied in order, each to the previous one's model; ONNX steps can only come last. */
export const chainVariantSchema = z
  .strictObject({
    method: z.literal('chain'),
    name: z.string().min(1).max(64).optional(),
    steps: z.array(stepSchema).min(2).max(4),
  })
  .refine((v) => v.steps.slice(0, -1).every((s) => s.method !== 'onnx' && s.method !== 'int8'), {
    path: ['steps'],
    message: 'an onnx or int8 step can only be the last step (its model is no longer a TensorFlow.js model)',
  });

export const compressionVariantSchema = z.discriminatedUnion('method', [...stepSchema.options, chainVariantSchema]);

export type QuantizeVariant = z.output<typeof quantizeVariantSchema>;
export type OnnxVariant = z.output<typeof onnxVariantSchema>;
export type Int8Variant = z.output<typeof int8VariantSchema>;
export type PruneVariant = z.output<typeof pruneVariantSchema>;
export type StructuredPruneVariant = z.output<typeof structuredPruneVariantSchema>;
export type DistillVariant = z.output<typeof distillVariantSchema>;
export type ChainVariant = z.output<typeof chainVariantSchema>;
export type CompressionStep = z.output<typeof stepSchema>;
export type CompressionVariant = z.output<typeof compressionVariantSchema>;
