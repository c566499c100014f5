import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { CancelledFailure, defaultPayloadConverter } from '@temporalio/common';
import { decodeFromPayloadsAtIndex } from '@temporalio/common/lib/internal-non-workflow';
import { temporal } from '@temporalio/proto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TrainPartitionResult } from '../activities/distributed';
import type { EvaluationSummary } from '../activities/evaluation';
import { activityCosts } from '../bench/round-breakdown';
import { followRun } from '../cli/follow';
import { artifactStore } from '../lib/artifacts';
import type { RoundRecord } from '../lib/distributed/rounds';
import type { DistributedTrainInput } from '../lib/schemas/distributed-train';
import type { TrainProgress } from '../lib/training/train-job';
import { registryWorkflowId } from '../lib/registry';
import { distributedProgressQuery, distributedTrain, mlPipeline, versionsQuery, type DistributedTrainResult } from '../workflows';
import { preprocessDigits } from './helpers/digits';
import { faultRunUnits } from './helpers/fault-run-size';
import { invalidInputOf } from './helpers/failures';
import { reportDocumentOf } from './helpers/report';
import { writeSyntheticDataset } from './helpers/synthetic-dataset';
import { runWorkersInProcess, startTemporal, startWorkerProcess, temporaryDataDir, type InProcessWorkers, type WorkerProcess } from './helpers/temporal';
import { trainingChildrenOf } from './helpers/training';
import { waitFor } from './helpers/wait';

const { EventType } = temporal.api.enums.v1;
/** A small MLP that learns the digits in a few rounds. */
const MLP = { architecture: 'mlp' as const, hiddenUnits: [32], dropout: 0 };
const TRAINING = { batchSize: 16, learningRate: 0.003, checkpointEverySeconds: 1 };
const CHANCE = 0.1;

describe('distributedTrain (real Temporal server, two real training worker processes)', () => {
  let env: TestWorkflowEnvironment;
  let workers: InProcessWorkers;
  let dataDir: string;
  let trainers: WorkerProcess[];
  let digits: string;
  let synthetic: string;

  before(async () => {
    dataDir = temporaryDataDir();
    process.env.TEMPORAL_ML_DATA_DIR = dataDir;
    env = await startTemporal();
    workers = await runWorkersInProcess(env, ['ml-pipeline', 'ml-cpu']);
    trainers = await Promise.all([0, 1].map(() => startWorkerProcess(env.address, dataDir, { TASK_QUEUES: 'ml-train', SDK_METRICS_PORT: '0' })));
    digits = await preprocessDigits(1500);
    synthetic = await writeSyntheticDataset(artifactStore(), 64);
  });

  after(async () => {
    await Promise.all(trainers.map((t) => t.stop()));
    await workers.shutdown();
    await env.teardown();
  });

  const start = (name: string, input: DistributedTrainInput) =>
    env.client.workflow.start(distributedTrain, { taskQueue: 'ml-pipeline', workflowId: `${name}-${Date.now()}`, args: [input] });
  const digitsRun = (overrides: Partial<DistributedTrainInput>): DistributedTrainInput => ({
    manifestUri: digits,
    model: MLP,
    training: TRAINING,
    numWorkers: 2,
    rounds: 3,
    ...overrides,
  });
  const eventsOf = async (handle: WorkflowHandle) => (await handle.fetchHistory()).events ?? [];
  const roundsOf = (result: DistributedTrainResult) => artifactStore().readJson<RoundRecord[]>(result.historyUri);
  const trainingChildren = () => trainers.flatMap((t) => trainingChildrenOf(t.process.pid!));
  /** The latest heartbeats of the run's trainPartition activities now running (a partition heartbeats once its process has loaded it). */
  const trainingHeartbeats = async (handle: WorkflowHandle) =>
    Promise.all(
      ((await handle.describe()).raw.pendingActivities ?? [])
        .filter((a) => a.activityType?.name === 'trainPartition' && a.heartbeatDetails?.payloads?.length)
        .map((a) => decodeFromPayloadsAtIndex<TrainProgress>(env.client.options.loadedDataConverter, 0, a.heartbeatDetails!.payloads!)),
    );
  /** Resolves once round `round` has both partitions training past a checkpoint. */
  const roundTrainingPastCheckpoint = (handle: WorkflowHandle, round: number) =>
    waitFor(`round ${round} training in both processes`, 180_000, async () => {
      const progress = await handle.query(distributedProgressQuery).catch(() => undefined);
      if (progress?.round !== round - 1) return undefined;
      const heartbeats = await trainingHeartbeats(handle);
      return heartbeats.length === 2 && heartbeats.every((h) => h.checkpoint) ? true : undefined;
    });
  const partitionResults = async (handle: WorkflowHandle) =>
    (await activityCosts(handle)).filter((c) => c.type === 'trainPartition').map((c) => c.result as TrainPartitionResult);
  /**
   * Local epochs (4 to 25) for rounds that can be interrupted mid-training (see FAULT_RUN_SECONDS), from the slower
   * partition's optimizer steps in the second round of a 4-epoch run.
   */
  const localEpochsForFaults = async (training: DistributedTrainInput['training']) => {
    const pace = await start('pace', digitsRun({ rounds: 2, localEpochs: 4, training }));
    await pace.result();
    const perEpoch = Math.max(...(await partitionResults(pace)).slice(2).map((r) => r.timings.train)) / 4;
    const epochs = faultRunUnits(perEpoch, 4, 25);
    console.log(`${perEpoch.toFixed(2)} s an epoch: ${epochs} local epochs a round`);
    return epochs;
  };

  it('sync: FedAvg rounds on the digits reach well above chance, with a per-round history, followed by the CLI', { timeout: 300_000 }, async () => {
    const handle = await start('sync', digitsRun({}));
    const result = (await followRun(env.client, handle.workflowId)) as DistributedTrainResult;
    console.log(`sync: validation ${result.validationAccuracy.toFixed(3)}, test ${result.evaluation.accuracy.toFixed(3)} in ${result.seconds.toFixed(1)} s`);
    assert.equal(result.rounds, 3);
    assert.ok(result.evaluation.accuracy > 5 * CHANCE, `test accuracy ${result.evaluation.accuracy}`);
    const rounds = await roundsOf(result);
    assert.deepEqual(rounds.map((r) => r.round), [1, 2, 3]);
    assert.ok(rounds.every((r) => r.updates === 2 && r.skipped.length === 0 && r.validationAccuracy > 0 && r.aggregationSeconds >= 0));
    assert.ok(rounds[2]!.seconds > rounds[0]!.seconds);
    assert.equal(rounds[2]!.validationAccuracy, result.validationAccuracy);
    // Rounds are scored without timing predictions; the final evaluation, on the test split, times them.
    const evaluations = (await activityCosts(handle)).filter((c) => c.type === 'evaluateModel').map((c) => c.result as EvaluationSummary);
    assert.equal(evaluations.filter((e) => e.latencyMs === null).length, 3);
    assert.ok(result.evaluation.latencyMs && result.evaluation.latencyMs.single > 0, JSON.stringify(result.evaluation.latencyMs));
    const progress = await handle.query(distributedProgressQuery);
    assert.equal(progress.stage, 'done');
    assert.deepEqual(progress.partitions.map((p) => p.state), ['reported', 'reported']);
  });

  it('async: staleness-weighted merges reach well above chance; stale updates are dropped and counted', { timeout: 300_000 }, async () => {
    const result = await (await start('async', digitsRun({ mode: 'async' }))).result();
    console.log(`async: validation ${result.validationAccuracy.toFixed(3)}, test ${result.evaluation.accuracy.toFixed(3)}, ${result.droppedStaleUpdates} dropped`);
    assert.equal(result.rounds, 3);
    assert.ok(result.evaluation.accuracy > 5 * CHANCE, `test accuracy ${result.evaluation.accuracy}`);
    const rounds = await roundsOf(result);
    assert.ok(rounds.every((r) => r.updates === 2));
    assert.equal(rounds.reduce((sum, r) => sum + r.droppedStale, 0), result.droppedStaleUpdates);

    // Both partitions start from version 0; the second to finish is one merge stale, over a limit of 0.
    const strict = await (await start('async-strict', { manifestUri: synthetic, model: MLP, numWorkers: 2, rounds: 1, mode: 'async', async: { maxStaleness: 0 } })).result();
    assert.ok(strict.droppedStaleUpdates >= 1, `dropped ${strict.droppedStaleUpdates}`);
  });

  it('scores each round while the next one trains; the round that reaches the target ends the run, cancelling the one in flight', { timeout: 300_000 }, async () => {
    // 40 local epochs: the round in flight is still training when a round's scoring ends, even a cold first scoring.
    const target = 2 * CHANCE;
    const handle = await start('overlap', digitsRun({ rounds: 4, localEpochs: 40, target: { validationAccuracy: target } }));
    const result = await handle.result();
    const rounds = await roundsOf(result);
    const reached = rounds.length;
    assert.ok(result.reachedTarget && reached < 4 && rounds.every((r, i) => r.validationAccuracy >= target === (i === reached - 1)), JSON.stringify(rounds));
    assert.equal(result.rounds, reached);

    const events = await eventsOf(handle);
    const scheduled = (type: string) =>
      events
        .filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === type)
        .map((e) => ({ id: Number(e.eventId), input: defaultPayloadConverter.fromPayload<Record<string, unknown>>(e.activityTaskScheduledEventAttributes!.input!.payloads![0]!) }));
    const endedAt = new Map(
      events.flatMap((e) => {
        const ended = e.activityTaskCompletedEventAttributes ?? e.activityTaskCanceledEventAttributes;
        return ended ? [[Number(ended.scheduledEventId), Number(e.eventId)] as const] : [];
      }),
    );
    const training = scheduled('trainPartition');
    const scorings = scheduled('evaluateModel').slice(0, reached);
    assert.deepEqual(training.map((t) => t.input.round), Array.from({ length: reached + 1 }, (_, i) => [i + 1, i + 1]).flat(), 'the round after the last one was started');
    scorings.forEach((scoring, round) => {
      const nextRound = training.slice(2 * (round + 1), 2 * (round + 2));
      assert.ok(nextRound.every(({ id }) => id < endedAt.get(scoring.id)!), `round ${round + 2} started training before round ${round + 1}'s scoring ended`);
    });
    assert.equal(scorings.at(-1)!.input.modelUri, result.modelUri, 'the model is the one that reached the target');

    const inFlight = training.slice(-2).map(({ id }) => id);
    const cancelRequested = events.filter((e) => e.activityTaskCancelRequestedEventAttributes).map((e) => Number(e.activityTaskCancelRequestedEventAttributes!.scheduledEventId));
    assert.deepEqual(cancelRequested.sort((a, b) => a - b), inFlight, 'the round in flight was cancelled');
    const completedAt = Number(events.find((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED)!.eventId);
    assert.ok(inFlight.every((id) => endedAt.get(id)! < completedAt), 'the run ends after its cancelled partitions have stopped');
    const progress = await handle.query(distributedProgressQuery);
    assert.deepEqual(progress.partitions.map((p) => p.state), ['reported', 'reported'], 'progress shows the round that ended the run');
  });

  it('closes a round at its timeout once a quorum has reported, cancelling and recording the straggler', { timeout: 300_000 }, async () => {
    // One training worker for two partitions: the second cannot start before the first has reported, when the
    // round, past its timeout with its quorum (1 of 2), closes and cancels it. A partition trains for longer than
    // the timeout even in a warm process: 10 local epochs.
    const [kept, stopped] = trainers as [WorkerProcess, WorkerProcess];
    await stopped.stop();
    trainers = [kept];
    try {
      const handle = await start('straggler', digitsRun({ rounds: 2, localEpochs: 10, sync: { quorum: 0.5, roundTimeoutSeconds: 1 } }));
      const result = await handle.result();
      const rounds = await roundsOf(result);
      assert.deepEqual(rounds.map((r) => [r.updates, r.skipped.length]), [[1, 1], [1, 1]]);
      assert.equal(result.skippedUpdates, 2);
      const events = await eventsOf(handle);
      // A straggler that finishes before its cancellation reaches it completes instead; it is skipped all the same.
      assert.equal(events.filter((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED).length, 2, 'both stragglers cancelled');
      assert.ok(result.evaluation.accuracy > 3 * CHANCE);
    } finally {
      trainers = [kept, await startWorkerProcess(env.address, dataDir, { TASK_QUEUES: 'ml-train', SDK_METRICS_PORT: '0' })];
    }
  });

  it('cancelling the run stops every partition\'s training', { timeout: 300_000 }, async () => {
    const handle = await start('cancel', digitsRun({ localEpochs: 200 }));
    await roundTrainingPastCheckpoint(handle, 1);
    assert.equal(trainingChildren().length, 2, 'one warm training process per worker process');
    await handle.cancel();
    const error = await handle.result().then(
      () => assert.fail('the run should be cancelled'),
      (err: unknown) => err,
    );
    assert.ok(error instanceof WorkflowFailedError && error.cause instanceof CancelledFailure, String(error));
    const events = await eventsOf(handle);
    assert.equal(events.filter((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED).length, 2);
    await waitFor('no training process left', 30_000, () => (trainingChildren().length === 0 ? true : undefined));
  });

  it('keeps history bounded across continue-as-new and joins the rounds of every run', { timeout: 300_000 }, async () => {
    const handle = await start('continue', { manifestUri: synthetic, model: MLP, numWorkers: 2, rounds: 6, roundsPerRun: 2 });
    const result = await handle.result();
    assert.equal(result.runs, 3);
    assert.deepEqual((await roundsOf(result)).map((r) => r.round), [1, 2, 3, 4, 5, 6]);
    const [rounds, evaluation] = reportDocumentOf(result).sections;
    assert.deepEqual([rounds!.figures.map((figure) => figure.file), rounds!.tables[0]!.rows.map((row) => row[0])], [['rounds.png'], ['1', '2', '3', '4', '5', '6']]);
    assert.deepEqual(evaluation!.figures.map((figure) => figure.file), ['confusion-matrix.png', 'f1-per-class.png']);
    const runs = [];
    for await (const execution of env.client.workflow.list({ query: `WorkflowId = "${handle.workflowId}"` })) runs.push(execution.runId);
    assert.equal(runs.length, 3);
    const sizes = await Promise.all(runs.map(async (runId) => (await eventsOf(env.client.workflow.getHandle(handle.workflowId, runId))).length));
    console.log(`events per run: ${sizes.join(', ')}`);
    // Two rounds per run, whatever the run (the first also partitions, the last also scores the test split): the
    // runs' histories are about the same size, however many rounds the whole training takes.
    assert.ok(Math.max(...sizes) < 2 * Math.min(...sizes) && Math.max(...sizes) < 200, `events per run ${sizes}`);
  });

  it('mlPipeline trains with distributedTrain when its input asks for it', { timeout: 300_000 }, async () => {
    const handle = await env.client.workflow.start(mlPipeline, {
      taskQueue: 'ml-pipeline',
      workflowId: `pipeline-distributed-${Date.now()}`,
      args: [{ dataset: { maxImages: 300 }, model: MLP, training: TRAINING, distributed: { numWorkers: 2, rounds: 2 } }],
    });
    const result = await handle.result();
    assert.ok(result.status === 'trained');
    const child = await env.client.workflow.getHandle(`${handle.workflowId}-train`).describe();
    assert.equal(child.type, 'distributedTrain');
    assert.equal(result.epochs, 2);
    assert.equal(result.backend, null);
    assert.equal((await artifactStore().readJson<RoundRecord[]>(result.roundHistoryUri!)).length, 2);
    assert.equal(result.registry.version, 1);
    const [registered] = await env.client.workflow.getHandle(registryWorkflowId(result.modelName)).query(versionsQuery);
    assert.equal(registered!.modelUri, result.modelUri);
    const { numWorkers, rounds } = registered!.lineage.distributed as { numWorkers: number; rounds: number };
    assert.deepEqual({ numWorkers, rounds }, { numWorkers: 2, rounds: 2 });
  });

  it('fails at once on bad input, naming the field', { timeout: 120_000 }, async () => {
    const cases: [Partial<DistributedTrainInput> | Record<string, unknown>, RegExp][] = [
      [{ numWorkers: 0 }, /numWorkers: /],
      [{ sync: { quorum: 0 } }, /sync\.quorum: must be above 0/],
      [{ sync: { quorum: 1.5 } }, /sync\.quorum: must be at most 1/],
      [{ mode: 'ring' }, /mode: /],
      [{ partition: { strategy: 'round-robin' } }, /partition\.strategy: /],
      [{ async: { maxStaleness: -1 } }, /async\.maxStaleness: must be 0 or more/],
    ];
    for (const [overrides, message] of cases) {
      const handle = await start('bad', { manifestUri: synthetic, ...overrides } as DistributedTrainInput);
      const failure = await invalidInputOf(handle.result());
      assert.match(failure.message, message);
      assert.equal((await eventsOf(handle)).filter((e) => e.activityTaskScheduledEventAttributes).length, 0, 'failed before any activity');
    }
    // More partitions than training images is only known from the manifest: the partition step refuses it, once.
    const handle = await start('too-many', { manifestUri: synthetic, numWorkers: 100 });
    const failure = await invalidInputOf(handle.result());
    assert.match(failure.message, /^numWorkers: .*64 training images/);
    const attempts = (await eventsOf(handle)).flatMap((e) => (e.activityTaskStartedEventAttributes ? [e.activityTaskStartedEventAttributes.attempt] : []));
    assert.deepEqual(attempts, [1]);
  });

  it('SIGKILL of the training processes, then of a training worker process, mid-round: partitions resume from checkpoints, accuracy within 1 pp', { timeout: 600_000 }, async () => {
    // Rounds long enough to be caught training past a heartbeated checkpoint: at 2 s a round could end before both
    // partitions had heartbeated one.
    const training = { ...TRAINING, batchSize: 8 };
    const input = digitsRun({ localEpochs: await localEpochsForFaults(training), training });
    const undisturbedHandle = await start('undisturbed', input);
    const undisturbed = await undisturbedHandle.result();
    console.log(`undisturbed rounds ended at ${(await roundsOf(undisturbed)).map((r) => r.seconds.toFixed(1)).join(', ')} s`);
    // Every round after the first trains in the processes the earlier rounds left warm.
    assert.deepEqual((await partitionResults(undisturbedHandle)).slice(2).map((r) => r.timings.startup), [0, 0, 0, 0]);

    // One run, two faults. Round 2: both warm training processes killed; each activity starts a new process, which
    // resumes from the checkpoint, with no retry. Round 3: one training worker process killed; its partition times out
    // on heartbeats and resumes on another worker.
    const handle = await start('killed', input);
    await roundTrainingPastCheckpoint(handle, 2);
    const killedChildren = trainingChildren();
    for (const pid of killedChildren) process.kill(pid, 'SIGKILL');
    await roundTrainingPastCheckpoint(handle, 3);
    assert.ok(trainingChildren().every((pid) => !killedChildren.includes(pid)));
    const [victim, survivor] = trainers as [WorkerProcess, WorkerProcess];
    victim.process.kill('SIGKILL');
    await victim.stop();
    trainers = [survivor, await startWorkerProcess(env.address, dataDir, { TASK_QUEUES: 'ml-train', SDK_METRICS_PORT: '0' })];
    const result = await handle.result();
    console.log(`undisturbed: test ${undisturbed.evaluation.accuracy.toFixed(4)}; killed mid-round: ${result.evaluation.accuracy.toFixed(4)}`);
    const results = await partitionResults(handle);
    assert.deepEqual(results.slice(0, 4).map((r) => r.resumes.length), [0, 0, 1, 1], 'round 2 resumed in new processes');
    assert.ok(results.slice(2, 4).every((r) => r.timings.startup > 0));
    assert.ok(results.slice(4).some((r) => r.resumes.length === 1), 'the killed worker\'s partition resumed from its checkpoint');
    const retried = (await eventsOf(handle)).filter((e) => (e.activityTaskStartedEventAttributes?.attempt ?? 1) > 1);
    assert.equal(retried.length, 1, 'only the killed worker\'s partition was retried, once');
    assert.equal(retried[0]!.activityTaskStartedEventAttributes!.lastFailure?.timeoutFailureInfo?.timeoutType, temporal.api.enums.v1.TimeoutType.TIMEOUT_TYPE_HEARTBEAT);
    assert.deepEqual((await roundsOf(result)).map((r) => r.updates), [2, 2, 2], 'no update lost');
    assert.ok(Math.abs(result.evaluation.accuracy - undisturbed.evaluation.accuracy) <= 0.01);
  });
});
