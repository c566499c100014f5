import { executeChild, proxyActivities, setHandler, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type * as activities from '../activities';
import type { EvaluationSummary } from '../activities/evaluation';
import type { ReportLocation } from '../activities/report';
import type { DatasetManifest } from '../lib/datasets/manifest';
import { configFingerprintOf, registryWorkflowId, type PromotionDecision } from '../lib/registry';
import { mlPipelineInputSchema, type MlPipelineConfig, type MlPipelineInput } from '../lib/schemas/ml-pipeline';
import { ML_MODEL, ML_STAGE, TEMPORAL_SCHEDULED_BY_ID } from '../lib/search-attributes';
import type { Split } from '../lib/split';
import { parseWorkflowInput } from '../lib/validate';
import { compressModel, type CompressModelResult } from './compress-model';
import { progressQuery } from './definitions';
import { distributedTrain } from './distributed-train';
import { preprocessDataset, type PreprocessDatasetResult } from './preprocess-dataset';
import { writeReport } from './report';
import { trainModel } from './train-model';

// Update-with-start and queries wait for the registry's workflow worker: a short attempt, retried while that worker is away.
const { currentChampion, registerModelVersion, requestPromotion } = proxyActivities<typeof activities>({
  taskQueue: 'ml-cpu',
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});

export type PipelineStage = 'preprocessing' | 'training' | 'compression' | 'registering' | 'done';

export interface PipelineProgress {
  stage: PipelineStage;
  /** IDs of the child workflows, whose own `progress` queries say more. */
  preprocessWorkflowId: string;
  trainWorkflowId: string;
  /** Null when the input skips compression. */
  compressWorkflowId: string | null;
  /** Whether that child is a distributedTrain run rather than a trainModel one. */
  distributed: boolean;
  /** The modelRegistry the model is registered in. */
  registryWorkflowId: string;
}

/** What the registry made of the run's model. */
export interface PipelineRegistration extends PromotionDecision {
  version: number;
}

/** The report includes the training and compression runs' reports. */
export interface TrainedPipelineResult extends ReportLocation {
  status: 'trained';
  modelName: string;
  testAccuracy: number;
  testLoss: number;
  /** The training process's TensorFlow backend; null for a distributed run, whose partitions each have their own. */
  backend: string | null;
  counts: Record<Split, number>;
  /** Files of the source left out of the dataset (unreadable, corrupt, duplicate, ...), by reason. */
  leftOutByReason: DatasetManifest['leftOutByReason'];
  /** Distinct images kept per decoder (TensorFlow's or sharp), as preprocessDataset reported them. */
  decoders: PreprocessDatasetResult['decoders'];
  preprocessCacheHit: boolean;
  parameterCount: number;
  /** Epochs over the training images: for a distributed run, rounds times `localEpochs`. */
  epochs: number;
  /** For a distributed run, training images times epochs over its whole wall time, rounds' aggregation and evaluation included. */
  trainingSamplesPerSecond: number;
  manifestUri: string;
  modelUri: string;
  reportUri: string;
  /** The compression stage's table and choice; null when the input skipped it. */
  compression: Pick<CompressModelResult, 'chosen' | 'markdown' | 'tableUri'> | null;
  /** A distributed run's per-round history (see distributedTrain); null for a single one. */
  roundHistoryUri: string | null;
  registry: PipelineRegistration;
  stageSeconds: Record<'preprocessing' | 'training' | 'compression', number>;
}

/** A run that found the registry's champion trained on the same data with the same configuration, and stopped there. */
export interface UnchangedPipelineResult {
  status: 'unchanged';
  modelName: string;
  /** The champion this run would have reproduced. */
  champion: { version: number; modelUri: string; testAccuracy: number; workflowId: string };
  datasetFingerprint: string;
  configFingerprint: string;
  manifestUri: string;
  counts: Record<Split, number>;
  preprocessCacheHit: boolean;
  stageSeconds: Record<'preprocessing', number>;
}

export type MlPipelineResult = TrainedPipelineResult | UnchangedPipelineResult;

interface TrainedModel {
  modelUri: string;
  backend: string | null;
  epochs: number;
  trainingSamplesPerSecond: number;
  roundHistoryUri: string | null;
  evaluation: EvaluationSummary;
  reportHtmlUri: string;
}

/** Trains with trainModel, or with distributedTrain when the input asks for it, as the child workflow `workflowId`. */
async function train(config: MlPipelineConfig, manifestUri: string, workflowId: string): Promise<TrainedModel> {
  const { modelName, model, training, distributed } = config;
  if (distributed) {
    const trained = await executeChild(distributedTrain, { workflowId, args: [{ ...distributed, modelName, manifestUri, model, training }] });
    const epochs = trained.rounds * distributed.localEpochs;
    return {
      modelUri: trained.modelUri,
      backend: null,
      epochs,
      trainingSamplesPerSecond: (trained.trainSamples * epochs) / trained.seconds,
      roundHistoryUri: trained.historyUri,
      evaluation: trained.evaluation,
      reportHtmlUri: trained.reportHtmlUri,
    };
  }
  const trained = await executeChild(trainModel, { workflowId, args: [{ modelName, manifestUri, model, training }] });
  return {
    modelUri: trained.modelUri,
    backend: trained.backend,
    epochs: trained.history.length,
    trainingSamplesPerSecond: trained.trainingSamplesPerSecond,
    roundHistoryUri: null,
    evaluation: trained.evaluation,
    reportHtmlUri: trained.reportHtmlUri,
  };
}

/** The input's `retrain`, or its default: `if-changed` for a run a Temporal Schedule started, `always` otherwise. */
function retrainPolicy(config: MlPipelineConfig): NonNullable<MlPipelineConfig['retrain']> {
  return config.retrain ?? (workflowInfo().typedSearchAttributes.get(TEMPORAL_SCHEDULED_BY_ID) !== undefined ? 'if-changed' : 'always');
}

/** The `unchanged` result when the registry's champion was trained on this dataset with this configuration; else null. */
async function unchangedSinceChampion(config: MlPipelineConfig, dataset: PreprocessDatasetResult, preprocessingSeconds: number): Promise<UnchangedPipelineResult | null> {
  const { preprocess, model, training, distributed } = config;
  const configFingerprint = configFingerprintOf({ preprocess, model, training, distributed });
  const champion = await currentChampion(config.modelName);
  if (champion?.lineage.datasetFingerprint !== dataset.fingerprint || champion.lineage.configFingerprint !== configFingerprint) return null;
  return {
    status: 'unchanged',
    modelName: config.modelName,
    champion: { version: champion.version, modelUri: champion.modelUri, testAccuracy: champion.evaluation.testAccuracy, workflowId: champion.lineage.workflowId },
    datasetFingerprint: dataset.fingerprint,
    configFingerprint,
    manifestUri: dataset.manifestUri,
    counts: dataset.counts,
    preprocessCacheHit: dataset.cache.hit,
    stageSeconds: { preprocessing: preprocessingSeconds },
  };
}

/** Registers the trained model (with its compressed variants) as the next version of its name, then asks for promotion as `config.registry` says. */
async function register(config: MlPipelineConfig, manifestUri: string, trained: TrainedModel, compressed: CompressModelResult | null): Promise<PipelineRegistration> {
  const { modelName, preprocess, model, training } = config;
  const distributed = config.distributed ?? null;
  const { workflowId, runId } = workflowInfo();
  const registered = await registerModelVersion({
    modelName,
    version: {
      modelUri: trained.modelUri,
      lineage: { manifestUri, configFingerprint: configFingerprintOf({ preprocess, model, training, distributed }), model, training, distributed, workflowId, runId },
      evaluation: { testAccuracy: trained.evaluation.accuracy, testLoss: trained.evaluation.loss, reportUri: trained.evaluation.reportUri },
      compressed: (compressed?.table.rows ?? []).flatMap((row) =>
        row.status === 'done' ? [{ name: row.variant, modelUri: row.modelUri, sizeBytes: row.sizeBytes, testAccuracy: row.accuracy }] : [],
      ),
    },
  });
  const version = registered.version.version;
  const { promote, minImprovement } = config.registry;
  if (promote === 'never') return { version, promoted: false, champion: registered.champion, reason: 'registry.promote is never' };
  const request = promote === 'always' ? { version, force: true, reason: 'registry.promote is always' } : { version, minImprovement };
  return { version, ...(await requestPromotion({ modelName, request })) };
}

/** The end-to-end run: preprocess a dataset, train (on one worker or distributed) and evaluate a model on it, try compressing it, each as a child workflow, then register it. */
export async function mlPipeline(input: MlPipelineInput = {}): Promise<MlPipelineResult> {
  const { workflowId } = workflowInfo();
  const progress: PipelineProgress = {
    stage: 'preprocessing',
    preprocessWorkflowId: `${workflowId}-preprocess`,
    trainWorkflowId: `${workflowId}-train`,
    distributed: false,
    compressWorkflowId: null,
    registryWorkflowId: '',
  };
  setHandler(progressQuery, () => progress);
  const config = parseWorkflowInput('mlPipeline', mlPipelineInputSchema, input);
  progress.distributed = config.distributed !== undefined;
  progress.registryWorkflowId = registryWorkflowId(config.modelName);
  if (config.compression) progress.compressWorkflowId = `${workflowId}-compress`;
  const enterStage = (stage: PipelineStage) => {
    progress.stage = stage;
    upsertSearchAttributes([
      { key: ML_MODEL, value: config.modelName },
      { key: ML_STAGE, value: stage },
    ]);
    return Date.now();
  };

  let started = enterStage('preprocessing');
  const dataset = await executeChild(preprocessDataset, {
    workflowId: progress.preprocessWorkflowId,
    args: [{ dataset: config.dataset, preprocess: config.preprocess, batching: config.batching }],
  });
  const preprocessingSeconds = (Date.now() - started) / 1000;

  if (retrainPolicy(config) === 'if-changed') {
    const unchanged = await unchangedSinceChampion(config, dataset, preprocessingSeconds);
    if (unchanged) {
      enterStage('done');
      return unchanged;
    }
  }

  started = enterStage('training');
  const trained = await train(config, dataset.manifestUri, progress.trainWorkflowId);
  const trainingSeconds = (Date.now() - started) / 1000;

  let compressed: CompressModelResult | null = null;
  let compressionSeconds = 0;
  if (config.compression) {
    started = enterStage('compression');
    compressed = await executeChild(compressModel, {
      workflowId: progress.compressWorkflowId!,
      args: [{ modelName: config.modelName, modelUri: trained.modelUri, manifestUri: dataset.manifestUri, ...config.compression }],
    });
    compressionSeconds = (Date.now() - started) / 1000;
  }
  enterStage('registering');
  const registration = await register(config, dataset.manifestUri, trained, compressed);
  const report = await writeReport({
    title: `mlPipeline ${workflowId}: ${config.modelName}`,
    facts: [
      ['test accuracy', `${(trained.evaluation.accuracy * 100).toFixed(2)}% on ${dataset.counts.test} images`],
      ['images', `${dataset.counts.train} train / ${dataset.counts.validation} validation / ${dataset.counts.test} test`],
      ['stage seconds', `preprocessing ${preprocessingSeconds.toFixed(1)}, training ${trainingSeconds.toFixed(1)}, compression ${compressionSeconds.toFixed(1)}`],
      ['model', trained.modelUri],
    ],
    includes: [{ prefix: 'training', reportHtmlUri: trained.reportHtmlUri }, ...(compressed ? [{ prefix: 'compression', reportHtmlUri: compressed.reportHtmlUri }] : [])],
  });
  enterStage('done');

  return {
    status: 'trained',
    modelName: config.modelName,
    testAccuracy: trained.evaluation.accuracy,
    testLoss: trained.evaluation.loss,
    backend: trained.backend,
    counts: dataset.counts,
    leftOutByReason: dataset.leftOutByReason,
    decoders: dataset.decoders,
    preprocessCacheHit: dataset.cache.hit,
    parameterCount: trained.evaluation.parameterCount,
    epochs: trained.epochs,
    trainingSamplesPerSecond: trained.trainingSamplesPerSecond,
    manifestUri: dataset.manifestUri,
    modelUri: trained.modelUri,
    reportUri: trained.evaluation.reportUri,
    compression: compressed && { chosen: compressed.chosen, markdown: compressed.markdown, tableUri: compressed.tableUri },
    roundHistoryUri: trained.roundHistoryUri,
    registry: registration,
    stageSeconds: { preprocessing: preprocessingSeconds, training: trainingSeconds, compression: compressionSeconds },
    ...report,
  };
}
