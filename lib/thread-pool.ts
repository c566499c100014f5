import { Worker, type Transferable } from 'node:worker_threads';

interface Pending<Response> {
  resolve: (response: Response) => void;
  reject: (err: Error) => void;
  thread: Worker;
}

/**
 * Worker threads that answer requests by id, started on first use up to `size`. Each request goes to the thread with
 * the fewest requests in flight; a thread with nothing in flight is unref'd, so an idle pool never keeps the process
 * alive. A thread that dies fails its requests (a failure of this process, not of the input) and is replaced on the
 * next request.
 */
export class ThreadPool<Request extends { id: number }, Response extends { id: number }> {
  private threads: Worker[] = [];
  private nextId = 0;
  private pending = new Map<number, Pending<Response>>();
  private inFlight = new Map<Worker, number>();

  constructor(
    private readonly script: string,
    private readonly size: number,
    private readonly what: string,
    /** What every thread is started with (its `workerData`). */
    private readonly workerData?: unknown,
  ) {}

  request(request: Omit<Request, 'id'>, transfer: Transferable[] = []): Promise<Response> {
    const thread = this.thread();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, thread });
      this.inFlight.set(thread, (this.inFlight.get(thread) ?? 0) + 1);
      thread.ref();
      thread.postMessage({ ...request, id }, transfer);
    });
  }

  private thread(): Worker {
    const idle = this.threads.find((t) => !this.inFlight.get(t));
    if (idle || this.threads.length >= this.size) return idle ?? this.threads.reduce((a, b) => (this.inFlight.get(a)! <= this.inFlight.get(b)! ? a : b));
    const thread = new Worker(this.script, { workerData: this.workerData });
    thread.unref();
    thread.on('message', (response: Response) => this.settle(response.id, (p) => p.resolve(response)));
    thread.on('error', (err) => this.fail(thread, err));
    thread.on('exit', (code) => this.fail(thread, new Error(`${this.what} thread exited with code ${code}`)));
    this.threads.push(thread);
    return thread;
  }

  /** Stops every thread; requests still in flight fail. */
  async close(): Promise<void> {
    await Promise.all(this.threads.map((thread) => thread.terminate()));
  }

  private settle(id: number, how: (p: Pending<Response>) => void): void {
    const pending = this.pending.get(id);
    if (!pending) return;
    this.pending.delete(id);
    const left = this.inFlight.get(pending.thread)! - 1;
    this.inFlight.set(pending.thread, left);
    if (left === 0) pending.thread.unref();
    how(pending);
  }

  private fail(thread: Worker, err: Error): void {
    this.threads = this.threads.filter((t) => t !== thread);
    for (const [id, pending] of this.pending) if (pending.thread === thread) this.settle(id, (p) => p.reject(err));
    this.inFlight.delete(thread);
  }
}
