import { z } from 'zod';
import { modelSpecSchema, trainingSpecSchema } from './model';
import { artifactUriSchema } from './artifact-uri';

export const modelNameSchema = z
  .string()
  .regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/, 'use 1-63 letters, digits, "_", "." or "-"');

/** Input of the `trainModel` workflow: a dataset manifest (from preprocessing) and what to train on it. */
export const trainModelInputSchema = z
  .strictObject({
    modelName: modelNameSchema.default('model'),
    /** URI of a dataset manifest written by preprocessing (`manifestUri` in mlPipeline's result). */
    manifestUri: artifactUriSchema('a dataset manifest'),
    model: modelSpecSchema.prefault({}),
    training: trainingSpecSchema.prefault({}),
    /** A checkpoint to continue from (`checkpointUri` of an earlier result), instead of starting afresh. */
    resumeFrom: artifactUriSchema('a training checkpoint').optional(),
    /** Stop once this many of `training.epochs` are done, leaving `checkpointUri` to continue from (default: all). */
    untilEpoch: z.int().min(1).optional(),
  })
  .refine((input) => input.untilEpoch === undefined || input.untilEpoch <= input.training.epochs, { path: ['untilEpoch'], message: 'must be at most training.epochs' });

export type TrainModelInput = z.input<typeof trainModelInputSchema>;
export type TrainModelConfig = z.output<typeof trainModelInputSchema>;
