import type { TensorFlow } from '../../tf';

interface OpBinding {
  executeOp(name: string, attrs: { name: string }[], inputs: number[], outputs: number): unknown;
}

/** A readers-writer lock in shared memory: [0] counts the readers in, or is -1 while a writer is. */
export class SharedReadWriteLock {
  private readonly state: Int32Array;

  constructor(memory: SharedArrayBuffer) {
    this.state = new Int32Array(memory, 0, 1);
  }

  static memory(): SharedArrayBuffer {
    return new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT);
  }

  read<T>(body: () => T): T {
    for (;;) {
      const now = Atomics.load(this.state, 0);
      if (now >= 0 && Atomics.compareExchange(this.state, 0, now, now + 1) === now) break;
      if (now < 0) Atomics.wait(this.state, 0, now);
    }
    try {
      return body();
    } finally {
      if (Atomics.sub(this.state, 0, 1) === 1) Atomics.notify(this.state, 0);
    }
  }

  write<T>(body: () => T): T {
    for (;;) {
      const now = Atomics.compareExchange(this.state, 0, 0, -1);
      if (now === 0) break;
      Atomics.wait(this.state, 0, now);
    }
    try {
      return body();
    } finally {
      Atomics.store(this.state, 0, 0);
      Atomics.notify(this.state, 0);
    }
  }
}

/**
 * tfjs-node's binding records the name of every op attribute it is given in one process-wide std::set, without a
 * lock: a thread adding a name while another adds or looks one up can corrupt the set and crash the process (in
 * AssignOpAttr). A name already there is only looked up. So this thread's ops (its own and tfjs') go through `memory`'s
 * lock, shared by the process's decoder threads: an op using only names this thread has used before runs beside the
 * others, as a reader; one with a name new to this thread runs alone. (A worker's other threads run no TensorFlow ops
 * while it decodes: training, evaluation and export run in child processes.)
 */
export function guardAttributeNames(tf: TensorFlow, memory: SharedArrayBuffer): void {
  const backend = tf.backend() as unknown as { binding: OpBinding };
  const binding = backend.binding;
  const lock = new SharedReadWriteLock(memory);
  const used = new Set<string>();
  const executeOp: OpBinding['executeOp'] = (name, attrs, inputs, outputs) => {
    if (attrs.every((attr) => used.has(attr.name))) return lock.read(() => binding.executeOp(name, attrs, inputs, outputs));
    return lock.write(() => {
      try {
        return binding.executeOp(name, attrs, inputs, outputs);
      } finally {
        for (const attr of attrs) used.add(attr.name);
      }
    });
  };
  // The binding's own properties are read-only: the guarded one shadows executeOp and inherits the rest.
  const guarded: OpBinding = Object.create(binding, { executeOp: { value: executeOp } });
  backend.binding = guarded;
}
