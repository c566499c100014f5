import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isTooStale, mixingWeight } from '../lib/distributed/staleness';

describe('asynchronous mixing rule', () => {
  const rule = { mixing: 0.5, stalenessExponent: 0.5 };

  it('weighs a fresh update by `mixing`, a stale one by mixing * (staleness + 1)^-exponent', () => {
    assert.equal(mixingWeight(rule, 0), 0.5);
    assert.equal(mixingWeight(rule, 3), 0.25);
    assert.ok(Math.abs(mixingWeight(rule, 8) - 0.5 / 3) < 1e-12);
    assert.equal(mixingWeight({ mixing: 0.6, stalenessExponent: 0 }, 5), 0.6);
    assert.equal(mixingWeight({ mixing: 1, stalenessExponent: 1 }, 1), 0.5);
    assert.throws(() => mixingWeight(rule, -1), /staleness/);
  });

  it('drops updates staler than maxStaleness, keeps those at it', () => {
    assert.equal(isTooStale(8, 8), false);
    assert.equal(isTooStale(9, 8), true);
    assert.equal(isTooStale(0, 0), false);
    assert.equal(isTooStale(1, 0), true);
  });
});
