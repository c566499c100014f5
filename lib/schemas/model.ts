import { z } from 'zod';

export const modelSpecSchema = z.strictObject({
  architecture: z.enum(['mlp', 'cnn']).default('cnn'),
  /** Dense layer widths (MLP hidden layers; for the CNN, the dense layers after the convolutions). */
  hiddenUnits: z.array(z.int().positive().max(8192)).max(8).default([128]),
  /** Convolution filters per block (CNN only); each block is conv + max-pool. */
  filters: z.array(z.int().positive().max(1024)).max(6).default([16, 32]),
  kernelSize: z.int().min(1).max(11).default(3),
  dropout: z.number().min(0).max(0.9).default(0.2),
});

export const trainingSpecSchema = z.strictObject({
  epochs: z.int().min(1).max(1000).default(5),
  batchSize: z.int().min(1).max(8192).default(64),
  learningRate: z.number().positive().max(10).default(0.001),
  seed: z.int().min(0).default(42),
});

export type ModelSpec = z.output<typeof modelSpecSchema>;
export type TrainingSpec = z.output<typeof trainingSpecSchema>;
