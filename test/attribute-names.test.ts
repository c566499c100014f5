import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { guardAttributeNames, SharedReadWriteLock } from '../lib/preprocessing/decoders/attribute-names';
import { NativeImageOps } from '../lib/preprocessing/decoders/native-image-ops';
import { loadNative } from '../lib/tf';
import { bmp } from './helpers/image-formats';

const MODULE = join(__dirname, '..', 'lib', 'preprocessing', 'decoders', 'attribute-names.js');

/** Runs `body` (a function's source, given the lock and workerData) in a worker thread; resolves when it returns. */
function inThread(body: string, workerData: unknown): Promise<void> {
  const source = `const { workerData } = require('node:worker_threads');
    const { SharedReadWriteLock } = require(${JSON.stringify(MODULE)});
    (${body})(new SharedReadWriteLock(workerData.lock), workerData);`;
  const thread = new Worker(source, { eval: true, workerData });
  return new Promise((resolve, reject) => {
    thread.on('error', reject);
    thread.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`thread exited with ${code}`))));
  });
}

describe('the attribute-name lock of decoder threads', () => {
  it('lets readers in together and a writer in alone, across threads', async () => {
    const lock = SharedReadWriteLock.memory();
    // writers in, readers in, violations seen, most readers in at once, threads started
    const probe = new SharedArrayBuffer(5 * Int32Array.BYTES_PER_ELEMENT);
    const body = `(lock, { probe, seed }) => {
      const p = new Int32Array(probe);
      Atomics.add(p, 4, 1);
      while (Atomics.load(p, 4) < 3);
      const spin = (ms) => { const end = performance.now() + ms; while (performance.now() < end); };
      for (let i = 0; i < 400; i++) {
        if ((i * 7 + seed) % 5 === 0) {
          lock.write(() => {
            if (Atomics.add(p, 0, 1) !== 0 || Atomics.load(p, 1) !== 0) Atomics.add(p, 2, 1);
            spin(0.05);
            Atomics.sub(p, 0, 1);
          });
        } else {
          lock.read(() => {
            const readers = Atomics.add(p, 1, 1) + 1;
            if (Atomics.load(p, 0) !== 0) Atomics.add(p, 2, 1);
            for (let m = Atomics.load(p, 3); readers > m && Atomics.compareExchange(p, 3, m, readers) !== m; m = Atomics.load(p, 3));
            spin(0.2);
            Atomics.sub(p, 1, 1);
          });
        }
      }
    }`;
    await Promise.all([0, 1, 2].map((seed) => inThread(body, { lock, probe, seed })));
    const [writers, readers, violations, mostReaders] = new Int32Array(probe);
    assert.deepEqual({ writers, readers, violations }, { writers: 0, readers: 0, violations: 0 });
    assert.ok(mostReaders! >= 2, `readers ran together (at most ${mostReaders} at once)`);
  });

  it("runs this thread's TensorFlow ops, its own and tfjs', through the lock, once however often it is guarded", async () => {
    const tf = loadNative();
    const lock = SharedReadWriteLock.memory();
    guardAttributeNames(tf, lock);
    const guarded = (tf.backend() as unknown as { binding: object }).binding;
    // A second guard would take the lock inside the first's, and wait for itself.
    guardAttributeNames(tf, lock);
    assert.equal((tf.backend() as unknown as { binding: object }).binding, guarded, 'guarded once');
    let sum = 0;
    await assertRunsAfterWriter(lock, () => (sum = tf.tidy(() => tf.add(tf.scalar(1), tf.scalar(2)).dataSync()[0]!)), 'a tfjs op');
    assert.equal(sum, 3);
    const ops = NativeImageOps.open(NativeImageOps.bindingOf(tf));
    try {
      await assertRunsAfterWriter(lock, () => ops.decode('bmp', bmp(Uint8Array.of(10, 20, 30), 1, 1), 1), 'a native image op');
    } finally {
      ops.dispose();
    }
  });

  it('refuses memory that is not shared, rather than failing every op', () => {
    assert.throws(() => new SharedReadWriteLock(undefined as unknown as SharedArrayBuffer), /SharedArrayBuffer/);
    assert.throws(() => new SharedReadWriteLock(new ArrayBuffer(8) as unknown as SharedArrayBuffer), /SharedArrayBuffer/);
  });
});

/** Asserts that `body`, started here while another thread holds `lock` for writing, ends after that thread lets go. */
async function assertRunsAfterWriter(lock: SharedArrayBuffer, body: () => unknown, what: string): Promise<void> {
  // [0]: the writer is in; [1]: when it let go (Date.now()).
  const shared = new SharedArrayBuffer(2 * Float64Array.BYTES_PER_ELEMENT);
  const holding = inThread(
    `(lock, { shared }) => {
      const state = new Float64Array(shared);
      const flag = new Int32Array(shared, 0, 1);
      lock.write(() => {
        Atomics.store(flag, 0, 1);
        Atomics.notify(flag, 0);
        const end = performance.now() + 300;
        while (performance.now() < end);
        state[1] = Date.now();
      });
    }`,
    { lock, shared },
  );
  assert.notEqual(Atomics.wait(new Int32Array(shared, 0, 1), 0, 0, 30_000), 'timed-out', 'the writer thread took the lock');
  body();
  const ended = Date.now();
  await holding;
  const released = new Float64Array(shared)[1]!;
  assert.ok(released > 0 && ended >= released, `${what} ended after the writer let go (${ended} against ${released})`);
}
