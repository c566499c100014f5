import { z } from 'zod';
import { compressionVariantSchema, type CompressionStep, type CompressionVariant } from './compression';
import { modelNameSchema } from './train-model';
import { artifactUriSchema } from './artifact-uri';

/** The name of the uncompressed model's row in the table. */
export const BASELINE = 'baseline';
/** Appended to a distill variant's name for the same student trained on the labels alone. */
export const WITHOUT_DISTILLATION = '-without-distillation';

/** The variants tried when none are given: one of each method, and pruning followed by full integer quantization. */
export const DEFAULT_VARIANTS: z.input<typeof compressionVariantSchema>[] = [
  { method: 'quantize', dtype: 'float16' },
  { method: 'quantize', dtype: 'uint8' },
  { method: 'int8' },
  { method: 'prune', finalSparsity: 0.8 },
  { method: 'structured-prune', fraction: 0.5 },
  { method: 'distill' },
  { method: 'chain', steps: [{ method: 'prune', finalSparsity: 0.8 }, { method: 'int8' }] },
];

/** Quick variants, no training: what mlPipeline's compression stage tries by default. */
export const QUICK_VARIANTS: z.input<typeof compressionVariantSchema>[] = [
  { method: 'quantize', dtype: 'float16' },
  { method: 'quantize', dtype: 'uint8' },
  { method: 'int8' },
];

export const budgetSchema = z.strictObject({
  /** Largest drop in test accuracy (a fraction: 0.01 is one percentage point) a chosen variant may have against the baseline. */
  maxAccuracyDrop: z.number().min(0).max(1).default(0.01),
  /** What the choice minimises: `size` (smallest stored form, gzipped), `latency` (batch-256) or `parameters` (non-zero). */
  objective: z.enum(['size', 'latency', 'parameters']).default('size'),
});

const percent = (fraction: number) => Math.round(fraction * 100);

function stepName(step: CompressionStep): string {
  switch (step.method) {
    case 'quantize':
      return step.dtype;
    case 'onnx':
      return 'onnx-float32';
    case 'int8':
      return 'int8';
    case 'prune':
      return `prune-${percent(step.finalSparsity)}`;
    case 'structured-prune':
      return `structured-${percent(step.fraction)}`;
    case 'distill':
      return 'distill';
  }
}

/** A variant's name in the table: its own, or one derived from its method (`uint8`, `prune-80`, `prune-80+int8`). */
export function variantName(variant: CompressionVariant): string {
  if (variant.name) return variant.name;
  return variant.method === 'chain' ? variant.steps.map(stepName).join('+') : stepName(variant);
}

/** Names of the table rows a variant produces: distillation adds the student trained without it. */
export function rowNames(variant: CompressionVariant): string[] {
  const name = variantName(variant);
  return variant.method === 'distill' && variant.compareWithoutDistillation ? [name, `${name}${WITHOUT_DISTILLATION}`] : [name];
}

/** Variants to try, `defaults` when none are given; each named, the names unique among the table's rows. */
function variantsSchema(defaults: z.input<typeof compressionVariantSchema>[]) {
  return z
    .array(compressionVariantSchema)
    .min(1)
    .max(32)
    .prefault(defaults)
    .superRefine((variants, ctx) => {
      const seen = new Set([BASELINE]);
      variants.forEach((variant, index) => {
        for (const row of rowNames(variant)) {
          if (seen.has(row)) ctx.addIssue({ code: 'custom', path: [index, 'name'], message: `"${row}" names another row of the table; give each variant a unique name` });
          seen.add(row);
        }
      });
    })
    .transform((variants) => variants.map((variant) => ({ ...variant, name: variantName(variant) })));
}

/** Variants compressed and evaluated at once. */
const parallelismSchema = z.int().min(1).max(16).default(2);

/** mlPipeline's compression stage: compressModel's settings, quick variants by default. */
export const compressionStageSchema = z.strictObject({
  variants: variantsSchema(QUICK_VARIANTS),
  budget: budgetSchema.prefault({}),
  parallelism: parallelismSchema,
});

const storedUri = (what: string) => artifactUriSchema(`${what} in the artifact store`);

/** Input of the `compressModel` workflow: a trained model, its dataset, and the variants to try on it. */
export const compressModelInputSchema = z.strictObject({
  /** Name the model is known by in metrics and search attributes. */
  modelName: modelNameSchema.default('model'),
  /** A stored TensorFlow.js layers model (`modelUri` in a trainModel or mlPipeline result). */
  modelUri: storedUri('a TensorFlow.js layers model'),
  /** The dataset it was trained on (`manifestUri`): fine-tuning trains on its training split, every row is scored on its test split. */
  manifestUri: storedUri('a dataset manifest'),
  variants: variantsSchema(DEFAULT_VARIANTS),
  budget: budgetSchema.prefault({}),
  parallelism: parallelismSchema,
});

export type CompressModelInput = z.input<typeof compressModelInputSchema>;
export type CompressModelConfig = z.output<typeof compressModelInputSchema>;
export type CompressionBudget = z.output<typeof budgetSchema>;
export type CompressionObjective = CompressionBudget['objective'];
/** A variant as the workflow runs it: named. */
export type NamedVariant = CompressionVariant & { name: string };
