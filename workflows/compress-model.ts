import { CancellationScope, isCancellation, proxyActivities, setHandler, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type * as activities from '../activities';
import type { ReportLocation } from '../activities/report';
import { baselineRow, chooseVariant, renderTable, variantRows, type Choice, type CompressionTable, type TableRow, type VariantOutcome } from '../lib/compression/choice';
import type { CompressedModel } from '../lib/compression/compressed-model';
import { BASELINE, compressModelInputSchema, rowNames, type CompressModelConfig, type CompressModelInput, type NamedVariant } from '../lib/schemas/compress-model';
import type { CompressionStep, DistillVariant } from '../lib/schemas/compression';
import { ML_MODEL, ML_STAGE } from '../lib/search-attributes';
import { parseWorkflowInput } from '../lib/validate';
import { compressionProgressQuery } from './definitions';
import { fanOut } from './fan-out';
import { rootCauseMessage } from './failures';
import { writeReport } from './report';

const { checkCompressionInput, storeCompressionTable } = proxyActivities<typeof activities>({
  taskQueue: 'ml-cpu',
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '1 second', maximumAttempts: 5 },
});

// Tensor work in a child process that heartbeats its progress, as evaluateModel does.
const { quantizeWeights, exportOnnx, teacherLogits, evaluateVariant } = proxyActivities<typeof activities>({
  taskQueue: 'ml-cpu',
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '2 seconds', maximumAttempts: 5 },
});

// Fine-tuning and distillation train through runTraining: the same settings as trainModel's, so a dead worker is
// noticed within the heartbeat timeout and the retry resumes from the checkpoint in the last heartbeat.
const { pruneModel, distillModel } = proxyActivities<typeof activities>({
  taskQueue: 'ml-train',
  startToCloseTimeout: '24 hours',
  heartbeatTimeout: '20 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds', maximumAttempts: 20 },
});

export type VariantStatus = 'pending' | 'running' | 'done' | 'failed';

export interface CompressionProgress {
  stage: 'checking' | 'baseline' | 'compressing' | 'choosing' | 'done';
  variants: { variant: string; method: string; status: VariantStatus; error?: string }[];
}

export interface CompressModelResult extends ReportLocation {
  modelName: string;
  /** The table as stored at `tableUri` (JSON): the baseline, every variant's row (failed ones with their reason), the choice. */
  table: CompressionTable;
  tableUri: string;
  markdown: string;
  chosen: Choice;
}

/** One compression run: its input, and the teacher logits its distill steps share, computed once per teacher. */
class CompressionRun {
  private readonly logits = new Map<string, Promise<{ uri: string }>>();

  constructor(private readonly config: CompressModelConfig) {}

  private teacherLogitsOf(teacherUri: string): Promise<{ uri: string }> {
    const known = this.logits.get(teacherUri);
    if (known) return known;
    const logits = teacherLogits({ modelUri: teacherUri, manifestUri: this.config.manifestUri });
    // A failure is not kept: another distill variant asks again.
    logits.catch(() => this.logits.delete(teacherUri));
    this.logits.set(teacherUri, logits);
    return logits;
  }

  private async distill(teacherUri: string, variant: DistillVariant, withoutDistillation: boolean): Promise<CompressedModel> {
    const { uri } = await this.teacherLogitsOf(teacherUri);
    const { modelName, manifestUri } = this.config;
    return distillModel({ modelName, teacherUri, manifestUri, teacherLogitsUri: uri, variant, withoutDistillation });
  }

  /** Applies one step to the layers model at `modelUri`. */
  private applyStep(step: CompressionStep, modelUri: string): Promise<CompressedModel> {
    const { modelName, manifestUri } = this.config;
    switch (step.method) {
      case 'quantize':
        return quantizeWeights({ modelName, modelUri, variant: step });
      case 'onnx':
      case 'int8':
        return exportOnnx({ modelName, modelUri, manifestUri, variant: step });
      case 'prune':
      case 'structured-prune':
        return pruneModel({ modelName, modelUri, manifestUri, variant: step });
      case 'distill':
        return this.distill(modelUri, step, false);
    }
  }

  /** The models a variant produces, one per table row: a chain's last step's, with every step's details. */
  async produce(variant: NamedVariant): Promise<CompressedModel[]> {
    const { modelUri } = this.config;
    if (variant.method === 'distill' && variant.compareWithoutDistillation) {
      return Promise.all([this.distill(modelUri, variant, false), this.distill(modelUri, variant, true)]);
    }
    if (variant.method !== 'chain') return [await this.applyStep(variant, modelUri)];
    const steps: CompressedModel[] = [];
    for (const step of variant.steps) steps.push(await this.applyStep(step, steps.at(-1)?.uri ?? modelUri));
    const last = steps.at(-1)!;
    return [{ ...last, details: { steps: steps.map((model, index) => ({ method: variant.steps[index]!.method, uri: model.uri, bytes: model.bytes, ...model.details })) } }];
  }

  /** Produces and evaluates a variant's rows; a failure is the variant's outcome, not the run's. */
  async outcomes(variant: NamedVariant): Promise<VariantOutcome[]> {
    const names = rowNames(variant);
    try {
      const models = await this.produce(variant);
      const measurements = await Promise.all(
        models.map((model, index) => evaluateVariant({ modelName: this.config.modelName, variant: names[index]!, model, manifestUri: this.config.manifestUri })),
      );
      return models.map((model, index) => ({ variant: names[index]!, method: variant.method, status: 'done', model, measurement: measurements[index]! }));
    } catch (err) {
      // The run is being cancelled: that ends the run, it is not this variant's result.
      if (isCancellation(err) && CancellationScope.current().consideredCancelled) throw err;
      return names.map((name) => ({ variant: name, method: variant.method, status: 'failed', error: rootCauseMessage(err) }));
    }
  }
}

/**
 * Tries compression variants of a trained model (quantization, ONNX int8, pruning, distillation, chains of them) under
 * a parallelism limit, measures each and the uncompressed baseline on the same test split, and picks the variant with
 * the best objective within the accuracy budget. A variant that fails is recorded with its reason; the others go on.
 */
export async function compressModel(input: CompressModelInput): Promise<CompressModelResult> {
  const progress: CompressionProgress = { stage: 'checking', variants: [] };
  setHandler(compressionProgressQuery, () => progress);
  const config = parseWorkflowInput('compressModel', compressModelInputSchema, input);
  progress.variants = config.variants.map((variant) => ({ variant: variant.name, method: variant.method, status: 'pending' }));
  const enterStage = (stage: CompressionProgress['stage']) => {
    progress.stage = stage;
    upsertSearchAttributes([
      { key: ML_MODEL, value: config.modelName },
      { key: ML_STAGE, value: stage === 'done' ? 'done' : 'compression' },
    ]);
  };
  enterStage('checking');
  await checkCompressionInput({ modelUri: config.modelUri, manifestUri: config.manifestUri });

  enterStage('baseline');
  const measured = await evaluateVariant({ modelName: config.modelName, variant: BASELINE, model: { format: 'tfjs-layers', uri: config.modelUri }, manifestUri: config.manifestUri });
  const baseline = baselineRow({ format: 'tfjs-layers', uri: config.modelUri, bytes: measured.bytes, details: {} }, measured, config.budget);

  enterStage('compressing');
  const run = new CompressionRun(config);
  const outcomes: VariantOutcome[][] = [];
  await fanOut(0, config.variants.length, config.parallelism, async (index) => {
    const entry = progress.variants[index]!;
    entry.status = 'running';
    outcomes[index] = await run.outcomes(config.variants[index]!);
    const failed = outcomes[index].find((outcome) => outcome.status === 'failed');
    Object.assign(entry, failed ? { status: 'failed', error: failed.error } : { status: 'done' });
  });

  enterStage('choosing');
  const rows: TableRow[] = variantRows(baseline, outcomes.flat(), config.budget);
  const chosen = chooseVariant(baseline, rows, config.budget);
  const table: CompressionTable = { modelName: config.modelName, budget: config.budget, baseline, rows, chosen };
  const tableUri = await storeCompressionTable(table);
  const report = await writeReport({ title: `compressModel ${workflowInfo().workflowId}: ${config.modelName}`, compressionTableUri: tableUri });
  enterStage('done');
  return { modelName: config.modelName, table, tableUri, markdown: renderTable(table), chosen, ...report };
}
