import { Context } from '@temporalio/activity';
import { ArtifactPathError, artifactStore, keyOf } from '../lib/artifacts';
import { ChildTaskError, runChildTask, silenceTimeoutFor } from '../lib/child-task';
import type { CompressedModel } from '../lib/compression/compressed-model';
import type { TeacherLogitsJobInput, TeacherLogitsProgress } from '../lib/compression/teacher-logits-job';
import { recordedTeacherLogits, type StoredTeacherLogits } from '../lib/compression/teacher-logits';
import type { DistillVariant } from '../lib/schemas/compression';
import { invalidInput } from '../lib/validate';
import { runTraining } from './training';

export interface TeacherLogitsInput {
  modelUri: string;
  manifestUri: string;
}

const teacherLogitsJobModule = require.resolve('../lib/compression/teacher-logits-job');

/**
 * The teacher's logits for the training split, as a float32 `.npy` [trainCount, classes]: computed once per
 * (teacher, dataset) in a child process, heartbeating its progress; a retry or another student reuses them.
 */
export async function teacherLogits(input: TeacherLogitsInput): Promise<StoredTeacherLogits> {
  const context = Context.current();
  const store = artifactStore();
  for (const field of ['modelUri', 'manifestUri'] as const) {
    try {
      keyOf(input[field]);
    } catch (err) {
      if (err instanceof ArtifactPathError) throw invalidInput(field, err.message);
      throw err;
    }
  }
  const recorded = await recordedTeacherLogits(store, input.modelUri, input.manifestUri);
  if (recorded) return recorded;
  try {
    return await runChildTask<TeacherLogitsJobInput, TeacherLogitsProgress, StoredTeacherLogits>(
      teacherLogitsJobModule,
      { artifacts: await artifactStore().describeForChild(), modelUri: input.modelUri, manifestUri: input.manifestUri },
      { signal: context.cancellationSignal, onProgress: (progress) => context.heartbeat(progress), silenceTimeoutMs: silenceTimeoutFor(context.info.heartbeatTimeoutMs) },
    );
  } catch (err) {
    if (context.cancellationSignal.aborted) throw context.cancellationSignal.reason;
    if (err instanceof ChildTaskError && err.name === 'InvalidDatasetError') throw invalidInput('manifestUri', err.message);
    if (err instanceof ChildTaskError && err.name === 'TeacherMismatchError') throw invalidInput('modelUri', err.message);
    throw err;
  }
}

export interface DistillModelInput {
  modelName: string;
  teacherUri: string;
  manifestUri: string;
  /** What `teacherLogits` returned for the teacher on this dataset. */
  teacherLogitsUri: string;
  variant: DistillVariant;
  /** Train the same student, with the same seed and schedule, on the labels alone: what distillation is measured against. */
  withoutDistillation?: boolean;
}

/**
 * Trains `variant.student` on the labels and the teacher's softened outputs (Hinton et al. 2015), through the
 * training machinery: a child process, checkpoints in heartbeats, resumption after a crash or on another worker.
 */
export async function distillModel(input: DistillModelInput): Promise<CompressedModel> {
  const { variant } = input;
  const distill = !input.withoutDistillation;
  const trained = await runTraining({
    modelName: input.modelName,
    manifestUri: input.manifestUri,
    model: variant.student,
    training: variant.training,
    extension: distill ? { kind: 'distill', teacherLogitsUri: input.teacherLogitsUri, temperature: variant.temperature, alpha: variant.alpha } : undefined,
  });
  return {
    format: 'tfjs-layers',
    uri: trained.modelUri,
    bytes: trained.modelBytes,
    details: {
      student: variant.student,
      parameters: trained.parameterCount,
      distilled: distill,
      ...(distill ? { temperature: variant.temperature, alpha: variant.alpha } : {}),
      teacherUri: input.teacherUri,
      teacherLogitsUri: input.teacherLogitsUri,
      epochs: trained.history.length,
      resumes: trained.resumes.length,
    },
  };
}
