import { fork } from 'node:child_process';
import { recordChildUsage } from './resource-usage';

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
  return new Promise<R>((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(options.signal.reason);
      return;
    }
    const child = fork(modulePath, [], {
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced',
    });
    let settled = false;
    let silenceTimer: NodeJS.Timeout | undefined;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(silenceTimer);
      options.signal?.removeEventListener('abort', onAbort);
      fn();
    };
    const onSilence = () => {
      child.kill('SIGKILL');
      settle(() => reject(new ChildTaskError('ChildUnresponsive', `child process ${modulePath} sent nothing for ${options.silenceTimeoutMs} ms; killed it`)));
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
      child.once('exit', () => {
        clearTimeout(killer);
        settle(() => reject(options.signal?.reason));
      });
    };
    options.signal?.addEventListener('abort', onAbort);
    child.on('message', (message: ChildMessage<P, R>) => {
      heardFromChild();
      if (message.type === 'progress') options.onProgress?.(message.progress);
      else if (message.type === 'result') {
        recordChildUsage(message.usage);
        settle(() => resolve(message.result));
      } else {
        recordChildUsage(message.usage);
        settle(() => reject(new ChildTaskError(message.name, message.message, message.stack)));
      }
    });
    child.on('error', (err) => settle(() => reject(err)));
    child.on('exit', (code, signal) =>
      settle(() => reject(new ChildTaskError('ChildExited', `child process ${modulePath} exited (code ${code}, signal ${signal}) before returning a result`))),
    );
    child.send({ type: 'start', input } satisfies ParentMessage<I>);
  });
}

/** Child side: runs `task` on the input the parent sends, streams its progress, returns its result, then exits. */
export function serveChildTask<I, P, R>(task: (input: I, reportProgress: (progress: P) => void) => Promise<R>): void {
  if (!process.send) throw new Error('serveChildTask must run in a process started by runChildTask');
  // The parent died (a worker killed with SIGKILL, say): nobody wants the result, stop now.
  process.on('disconnect', () => process.exit(1));
  const send = (message: ChildMessage<P, R>) =>
    new Promise<void>((resolve) => process.send!(message, undefined, undefined, () => resolve()));
  process.once('message', (message: ParentMessage<I>) => {
    task(message.input, (progress) => void send({ type: 'progress', progress }))
      .then(
        (result) => send({ type: 'result', result, usage: process.resourceUsage() }),
        (err: Error) => send({ type: 'error', name: err.name, message: err.message, stack: err.stack, usage: process.resourceUsage() }),
      )
      .finally(() => process.exit(0));
  });
}
