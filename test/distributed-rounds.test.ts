import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { quorumCount, reachedEnd, weightedLoss } from '../lib/distributed/rounds';
import { distributedTrainInputSchema } from '../lib/schemas/distributed-train';

describe('distributed round bookkeeping', () => {
  it('a quorum is the share of partitions rounded up, at least one', () => {
    assert.equal(quorumCount(3, 0.6), 2);
    assert.equal(quorumCount(10, 0.7), 7);
    assert.equal(quorumCount(4, 1), 4);
    assert.equal(quorumCount(64, 0.01), 1);
  });

  it('the round loss weights each update by its samples', () => {
    assert.equal(weightedLoss([{ samples: 300, loss: 1 }, { samples: 100, loss: 3 }]), 1.5);
  });

  it('a run ends at its last round or at the validation target', () => {
    assert.equal(reachedEnd(3, 3, 0.5, null), true);
    assert.equal(reachedEnd(2, 3, 0.5, null), false);
    assert.equal(reachedEnd(2, 3, 0.9, 0.88), true);
    assert.equal(reachedEnd(2, 3, 0.87, 0.88), false);
  });

  it('the input defaults to 4 synchronous workers, full quorum, FedAsync defaults', () => {
    const config = distributedTrainInputSchema.parse({ manifestUri: 'artifact://m.json' });
    assert.equal(config.numWorkers, 4);
    assert.equal(config.mode, 'sync');
    assert.deepEqual(config.sync, { quorum: 1, roundTimeoutSeconds: null });
    assert.deepEqual(config.async, { maxStaleness: 8, mixing: 0.5, stalenessExponent: 0.5 });
    assert.deepEqual(config.partition, { strategy: 'iid', alpha: 0.5 });
  });
});
