import { fork, type ChildProcess } from 'node:child_process';
import { beginCachedTask, endCachedTask } from './child-cache';
import { childUsageRecorder, usageSince } from './resource-usage';
import { withoutSecrets } from './secrets';
import { withoutOneThreadPerOp } from './tf';

/**
 * Heavy, synchronous tensor work runs in a child process so the worker's event loop stays free for heartbeats,
 * cancellation and workflow tasks. The child module calls `serveChildTask`; the parent calls `runChildTask`.
 */

type ParentMessage<I> = { type: 'start'; input: I };
type ChildMessage<P, R> =
  | { type: 'progress'; progress: P }
  | { type: 'result'; result: R; usage: NodeJS.ResourceUsage }
  | { type: 'error'; name: string; message: string; stack?: string; usage: NodeJS.ResourceUsage };

/** An error thrown inside the child, rebuilt in the parent with its original name. */
export class ChildTaskError extends Error {
  constructor(
    override readonly name: string,
    message: string,
    readonly childStack?: string,
  ) {
    super(message);
  }
}

export interface RunChildTaskOptions<P> {
  onProgress?: (progress: P) => void;
  /** Aborting sends the child SIGTERM, then SIGKILL after `stopGraceMs`, and rejects with the signal's reason. */
  signal?: AbortSignal;
  stopGraceMs?: number;
  /**
   * A child that sends nothing (no progress, no result) for this long is taken as hung (a stuck read, a native
   * deadlock): it gets SIGKILL and the promise rejects with a `ChildUnresponsive` ChildTaskError.
   */
  silenceTimeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

/**
 * How long an activity's child may stay silent: a little past the activity's heartbeat timeout, so Temporal's timeout
 * (and the retry it schedules) comes first; the kill then frees this worker's slot for that retry.
 */
export function silenceTimeoutFor(heartbeatTimeoutMs: number | undefined): number | undefined {
  return heartbeatTimeoutMs === undefined ? undefined : heartbeatTimeoutMs + 5_000;
}

export function runChildTask<I, P, R>(modulePath: string, input: I, options: RunChildTaskOptions<P> = {}): Promise<R> {
  if (options.signal?.aborted) return Promise.reject(options.signal.reason);
  const child = forkChild(modulePath, [], options.env);
  return runTaskOn<I, P, R>(child, modulePath, input, options).result;
}

/**
 * Children get the worker's environment without its credentials (they talk to neither Temporal nor a store) and
 * without the worker's own TensorFlow thread setting (see oneThreadPerOp).
 */
function forkChild(modulePath: string, args: string[], env: NodeJS.ProcessEnv | undefined): ChildProcess {
  const inherited = withoutOneThreadPerOp(withoutSecrets(process.env));
  return fork(modulePath, args, { env: { ...inherited, ...env }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' });
}

/**
 * Runs one task on `child`. `reusable` settles with the result: true when the child answered (a result or an error)
 * and is still alive, ready for another task; false when it exited, was killed as silent, or was stopped by `signal`.
 */
function runTaskOn<I, P, R>(child: ChildProcess, modulePath: string, input: I, options: RunChildTaskOptions<P>): { result: Promise<R>; reusable: Promise<boolean> } {
  let markReusable!: (reusable: boolean) => void;
  const recordChildUsage = childUsageRecorder();
  const reusable = new Promise<boolean>((resolve) => (markReusable = resolve));
  const result = new Promise<R>((resolve, reject) => {
    let settled = false;
    let silenceTimer: NodeJS.Timeout | undefined;
    const settle = (answered: boolean, fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(silenceTimer);
      options.signal?.removeEventListener('abort', onAbort);
      child.off('message', onMessage);
      child.off('error', onError);
      child.off('exit', onExit);
      markReusable(answered && child.exitCode === null && child.signalCode === null);
      fn();
    };
    const onSilence = () => {
      child.kill('SIGKILL');
      settle(false, () => reject(new ChildTaskError('ChildUnresponsive', `child process ${modulePath} sent nothing for ${options.silenceTimeoutMs} ms; killed it`)));
    };
    const heardFromChild = () => {
      if (options.silenceTimeoutMs === undefined || settled) return;
      clearTimeout(silenceTimer);
      silenceTimer = setTimeout(onSilence, options.silenceTimeoutMs);
    };
    heardFromChild();
    const onAbort = () => {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), options.stopGraceMs ?? 2000);
      child.once('exit', () => clearTimeout(killer));
    };
    options.signal?.addEventListener('abort', onAbort);
    const onMessage = (message: ChildMessage<P, R>) => {
      heardFromChild();
      if (message.type === 'progress') options.onProgress?.(message.progress);
      // A stopped child's answer is not the task's: the promise settles when the child has exited.
      else if (options.signal?.aborted) return;
      else if (message.type === 'result') {
        recordChildUsage(message.usage);
        settle(true, () => resolve(message.result));
      } else {
        recordChildUsage(message.usage);
        settle(true, () => reject(new ChildTaskError(message.name, message.message, message.stack)));
      }
    };
    const onError = (err: Error) => settle(false, () => reject(err));
    const onExit = (code: number | null, signal: NodeJS.Signals | null) =>
      settle(false, () =>
        reject(
          options.signal?.aborted
            ? options.signal.reason
            : new ChildTaskError('ChildExited', `child process ${modulePath} exited (code ${code}, signal ${signal}) before returning a result`),
        ),
      );
    child.on('message', onMessage);
    child.on('error', onError);
    child.on('exit', onExit);
    child.send({ type: 'start', input } satisfies ParentMessage<I>);
  });
  return { result, reusable };
}

interface IdleChild {
  process: ChildProcess;
  /** What the child's last task was about (a partition's manifest, say): a task about the same finds its data cached. */
  affinity: string | undefined;
  timer: NodeJS.Timeout;
  onExit: () => void;
}

/**
 * Child processes of one module that outlive a task: a child that answered goes back to the pool, keeping what it
 * has loaded (TensorFlow, cached dataset splits; see lib/child-cache.ts), and serves the next task over IPC, so only a
 * process's first task pays for starting it. Everything else is as with runChildTask: progress, silence and
 * cancellation per task; a child that exits, is killed or is stopped is dropped, and the next task forks a new one.
 * Idle children exit after `idleSeconds` and never keep the parent alive; the pool keeps at most `maxIdle` of them.
 */
export class WarmChildPool {
  private idle: IdleChild[] = [];

  constructor(
    private readonly modulePath: string,
    private readonly options: { env?: NodeJS.ProcessEnv; maxIdle: number; idleSeconds: number },
  ) {}

  run<I, P, R>(input: I, options: Omit<RunChildTaskOptions<P>, 'env'> & { affinity?: string } = {}): Promise<R> {
    if (this.options.idleSeconds === 0) return runChildTask(this.modulePath, input, { ...options, env: this.options.env });
    if (options.signal?.aborted) return Promise.reject(options.signal.reason);
    const child = this.take(options.affinity);
    const task = runTaskOn<I, P, R>(child, this.modulePath, input, options);
    void task.reusable.then((reusable) => (reusable ? this.putBack(child, options.affinity) : child.kill('SIGKILL')));
    return task.result;
  }

  /** Idle children now (for tests and metrics). */
  get idleProcesses(): ChildProcess[] {
    return this.idle.map((entry) => entry.process);
  }

  private take(affinity: string | undefined): ChildProcess {
    // A child whose exit is not yet reported cannot take a task: sending to it would fail with a bare IPC error.
    this.idle.filter((entry) => !entry.process.connected).forEach((entry) => this.remove(entry));
    const index = this.idle.findIndex((entry) => affinity !== undefined && entry.affinity === affinity);
    // Otherwise the child idle longest: the most recently used ones are likelier to be asked for their data again.
    const [entry] = this.idle.splice(index === -1 ? 0 : index, 1);
    if (!entry) return this.fork();
    clearTimeout(entry.timer);
    entry.process.off('exit', entry.onExit);
    setReferenced(entry.process, true);
    return entry.process;
  }

  private fork(): ChildProcess {
    return forkChild(this.modulePath, [WARM_CHILD_FLAG], this.options.env);
  }

  private putBack(child: ChildProcess, affinity: string | undefined): void {
    const entry: IdleChild = {
      process: child,
      affinity,
      timer: setTimeout(() => this.retire(entry), this.options.idleSeconds * 1000).unref(),
      onExit: () => this.remove(entry),
    };
    child.once('exit', entry.onExit);
    setReferenced(child, false);
    this.idle.push(entry);
    while (this.idle.length > this.options.maxIdle) this.retire(this.idle[0]!);
  }

  private retire(entry: IdleChild): void {
    this.remove(entry);
    entry.process.kill('SIGTERM');
  }

  private remove(entry: IdleChild): void {
    clearTimeout(entry.timer);
    this.idle = this.idle.filter((e) => e !== entry);
  }
}

/** An idle child (and its IPC channel) must not keep the parent's event loop alive; a busy one does. */
function setReferenced(child: ChildProcess, referenced: boolean): void {
  if (referenced) {
    child.ref();
    child.channel?.ref();
  } else {
    child.unref();
    child.channel?.unref();
  }
}

/** Started with this argument, a child serves task after task instead of exiting after the first. */
const WARM_CHILD_FLAG = '--warm';

/**
 * Child side: runs `task` on each input the parent sends, streams its progress and returns its result. A child
 * started by runChildTask exits after its task; a warm one (WarmChildPool) waits for the next. SIGTERM stops a warm
 * child: at once when idle or when the task does not handle SIGTERM itself, else once the task has stopped.
 */
export function serveChildTask<I, P, R>(task: (input: I, reportProgress: (progress: P) => void) => Promise<R>): void {
  if (!process.send) throw new Error('serveChildTask must run in a process started by runChildTask');
  const warm = process.argv.includes(WARM_CHILD_FLAG);
  // The parent died (a worker killed with SIGKILL, say): nobody wants the result, stop now.
  process.on('disconnect', () => process.exit(1));
  let busy = false;
  let stopping = false;
  // A warm child serves task after task: each is counted the CPU time since the previous one ended (the first, since
  // the process started), not everything the process has used.
  let accounted: NodeJS.ResourceUsage | undefined;
  const usageOfTask = () => {
    const usage = usageSince(accounted);
    accounted = process.resourceUsage();
    return usage;
  };
  if (warm) {
    process.on('SIGTERM', () => {
      stopping = true;
      if (!busy || process.listenerCount('SIGTERM') === 1) process.exit(0);
    });
  }
  const send = (message: ChildMessage<P, R>) =>
    new Promise<void>((resolve) => process.send!(message, undefined, undefined, () => resolve()));
  process.on('message', (message: ParentMessage<I>) => {
    busy = true;
    beginCachedTask();
    task(message.input, (progress) => void send({ type: 'progress', progress }))
      .then(
        (result) => send({ type: 'result', result, usage: usageOfTask() }),
        (err: Error) => send({ type: 'error', name: err.name, message: err.message, stack: err.stack, usage: usageOfTask() }),
      )
      .finally(() => {
        busy = false;
        if (!warm || stopping) process.exit(0);
        endCachedTask();
      });
  });
}
