import type { TensorFlow } from '../../tf';

interface OpBinding {
  executeOp(name: string, attrs: { name: string }[], inputs: number[], outputs: number): unknown;
}

const READERS = 0;
const WRITERS_WAITING = 1;

/**
 * A readers-writer lock in shared memory that prefers writers: [0] counts the readers in, or is -1 while a writer is;
 * [1] counts the writers waiting, and no reader enters while one does. A thread terminated inside it leaves it held.
 */
export class SharedReadWriteLock {
  private readonly state: Int32Array;

  constructor(memory: SharedArrayBuffer) {
    if (!(memory instanceof SharedArrayBuffer) || memory.byteLength < SharedReadWriteLock.BYTES) {
      throw new TypeError(`a SharedReadWriteLock needs a SharedArrayBuffer of ${SharedReadWriteLock.BYTES} bytes`);
    }
    this.state = new Int32Array(memory, 0, 2);
  }

  static readonly BYTES = 2 * Int32Array.BYTES_PER_ELEMENT;

  static memory(): SharedArrayBuffer {
    return new SharedArrayBuffer(SharedReadWriteLock.BYTES);
  }

  read<T>(body: () => T): T {
    for (;;) {
      const writers = Atomics.load(this.state, WRITERS_WAITING);
      if (writers > 0) {
        Atomics.wait(this.state, WRITERS_WAITING, writers);
        continue;
      }
      const readers = Atomics.load(this.state, READERS);
      if (readers >= 0 && Atomics.compareExchange(this.state, READERS, readers, readers + 1) === readers) break;
      if (readers < 0) Atomics.wait(this.state, READERS, readers);
    }
    try {
      return body();
    } finally {
      if (Atomics.sub(this.state, READERS, 1) === 1) Atomics.notify(this.state, READERS);
    }
  }

  write<T>(body: () => T): T {
    Atomics.add(this.state, WRITERS_WAITING, 1);
    for (;;) {
      const readers = Atomics.compareExchange(this.state, READERS, 0, -1);
      if (readers === 0) break;
      Atomics.wait(this.state, READERS, readers);
    }
    if (Atomics.sub(this.state, WRITERS_WAITING, 1) === 1) Atomics.notify(this.state, WRITERS_WAITING);
    try {
      return body();
    } finally {
      Atomics.store(this.state, READERS, 0);
      Atomics.notify(this.state, READERS);
    }
  }
}

const GUARDED = Symbol('attribute names guarded');

/**
 * tfjs-node's binding records the name of every op attribute it is given in one process-wide std::set, without a
 * lock: a thread adding a name while another adds or looks one up can corrupt the set and crash the process (in
 * AssignOpAttr). Adding a name already there only walks the set (libstdc++). So a thread's ops go through `memory`'s
 * lock, shared by the process's decoder threads: an op using only names an earlier op of the guarded binding ran with
 * runs beside the others, as a reader; one with a name new to it runs alone. (A worker's other threads run no
 * TensorFlow ops while it decodes: training, evaluation and export run in child processes.) Returns `binding` itself
 * when it is already guarded.
 */
export function guardedBinding<Binding extends OpBinding>(binding: Binding, memory: SharedArrayBuffer): Binding {
  if ((binding as { [GUARDED]?: true })[GUARDED]) return binding;
  const lock = new SharedReadWriteLock(memory);
  const used = new Set<string>();
  const executeOp: OpBinding['executeOp'] = (name, attrs, inputs, outputs) => {
    if (attrs.every((attr) => used.has(attr.name))) return lock.read(() => binding.executeOp(name, attrs, inputs, outputs));
    return lock.write(() => {
      // Only an op that ran has added its names: one that failed may have stopped before them.
      const result = binding.executeOp(name, attrs, inputs, outputs);
      for (const attr of attrs) used.add(attr.name);
      return result;
    });
  };
  // The binding's own properties are read-only: the guarded one shadows executeOp and inherits the rest.
  return Object.create(binding, { executeOp: { value: executeOp }, [GUARDED]: { value: true } }) as Binding;
}

/** Guards the binding TensorFlow.js' native backend runs its ops on (see `guardedBinding`). */
export function guardAttributeNames(tf: TensorFlow, memory: SharedArrayBuffer): void {
  const backend = tf.backend() as unknown as { binding: OpBinding };
  backend.binding = guardedBinding(backend.binding, memory);
}
