import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The project's Prometheus registry: process metrics plus per-activity and model-quality metrics. */
export const registry = new Registry();
collectDefaultMetrics({ register: registry });

const activityLabels = ['activity_type', 'task_queue'] as const;

export const activityDuration = new Histogram({
  name: 'temporal_ml_activity_duration_seconds',
  help: 'Wall time of one activity execution, by outcome.',
  labelNames: [...activityLabels, 'outcome'],
  buckets: [0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600],
  registers: [registry],
});

export const activityCpuSeconds = new Counter({
  name: 'temporal_ml_activity_cpu_seconds_total',
  help: 'CPU seconds (user + system) used by activity executions, including child processes they started.',
  labelNames: activityLabels,
  registers: [registry],
});

export const activityPeakRss = new Gauge({
  name: 'temporal_ml_activity_peak_rss_bytes',
  help: 'Peak resident memory seen during the latest execution of each activity type (worker or its child, whichever is larger).',
  labelNames: activityLabels,
  registers: [registry],
});

export const activityExecutions = new Counter({
  name: 'temporal_ml_activity_executions_total',
  help: 'Activity executions by outcome: completed, failed or cancelled.',
  labelNames: [...activityLabels, 'outcome'],
  registers: [registry],
});

export const tensorflowBackend = new Gauge({
  name: 'temporal_ml_tensorflow_backend_info',
  help: 'TensorFlow.js backend in use by this process (value 1).',
  labelNames: ['backend'],
  registers: [registry],
});

export const imagesPreprocessed = new Counter({
  name: 'temporal_ml_images_preprocessed_total',
  help: 'Distinct images written to shards; cache="hit" counts those of batches reused from an earlier run.',
  labelNames: ['cache'],
  registers: [registry],
});

export const preprocessBytesRead = new Counter({
  name: 'temporal_ml_preprocess_bytes_read_total',
  help: 'Bytes of image files (or IDX records) read by preprocessing batches.',
  registers: [registry],
});

export const preprocessBatchDuration = new Histogram({
  name: 'temporal_ml_preprocess_batch_seconds',
  help: 'Wall time of one preprocessing batch, by whether its shards were reused from the cache.',
  labelNames: ['cache'],
  buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
  registers: [registry],
});

export const preprocessImagesPerSecond = new Gauge({
  name: 'temporal_ml_preprocess_images_per_second',
  help: 'Images per second of the latest preprocessing batch that decoded (cache miss).',
  registers: [registry],
});

export const imagesQuarantined = new Counter({
  name: 'temporal_ml_images_quarantined_total',
  help: 'Images left out of a dataset, by reason.',
  labelNames: ['reason'],
  registers: [registry],
});

export const trainingSamplesPerSecond = new Gauge({
  name: 'temporal_ml_training_samples_per_second',
  help: 'Training throughput of the latest run, per model name.',
  labelNames: ['model', 'backend'],
  registers: [registry],
});

export const epochDuration = new Histogram({
  name: 'temporal_ml_training_epoch_seconds',
  help: 'Duration of each training epoch, per model name.',
  labelNames: ['model'],
  buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600],
  registers: [registry],
});

export const latestTrainingLoss = new Gauge({
  name: 'temporal_ml_training_loss',
  help: 'Latest running training loss, per model name.',
  labelNames: ['model'],
  registers: [registry],
});

export const latestTrainingAccuracy = new Gauge({
  name: 'temporal_ml_training_accuracy',
  help: 'Latest running training accuracy, per model name.',
  labelNames: ['model'],
  registers: [registry],
});

export const trainingLastProgress = new Gauge({
  name: 'temporal_ml_training_last_progress_timestamp_seconds',
  help: 'Unix time of the latest progress report (or the start) of each training running on this worker; the series goes when the training ends.',
  labelNames: ['activity_type', 'model', 'workflow_id', 'activity_id'],
  registers: [registry],
});

export const checkpointBytesWritten = new Counter({
  name: 'temporal_ml_checkpoint_bytes_total',
  help: 'Bytes of training checkpoints written, per model name.',
  labelNames: ['model'],
  registers: [registry],
});

export const modelTestAccuracy = new Gauge({
  name: 'temporal_ml_model_test_accuracy',
  help: 'Test-split accuracy of the latest evaluated model, per model name.',
  labelNames: ['model'],
  registers: [registry],
});

export const compressionRatio = new Gauge({
  name: 'temporal_ml_compression_ratio',
  help: "Stored size of the uncompressed model over a compression variant's (smallest stored form, gzip), per model and variant.",
  labelNames: ['model', 'variant'],
  registers: [registry],
});

export const compressionAccuracyDelta = new Gauge({
  name: 'temporal_ml_compression_accuracy_delta',
  help: "A compression variant's test accuracy minus the uncompressed model's (negative: a drop), per model and variant.",
  labelNames: ['model', 'variant'],
  registers: [registry],
});
