import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { throttled } from '../lib/throttle';

describe('throttled', () => {
  const setup = () => {
    let time = 0;
    const reports: number[] = [];
    const report = throttled((step: number) => reports.push(step), { everyItems: 3, everyMs: 1000, now: () => time });
    return { reports, report, advance: (ms: number) => (time += ms) };
  };

  it('reports every `everyItems` steps of a fast loop', () => {
    const { reports, report } = setup();
    for (let step = 1; step <= 10; step++) report(step);
    assert.deepEqual(reports, [3, 6, 9]);
  });

  it('reports a slow step once `everyMs` has passed, counting steps afresh from each report', () => {
    const { reports, report, advance } = setup();
    report(1);
    advance(999);
    assert.deepEqual(reports, []);
    advance(1);
    report(2);
    assert.deepEqual(reports, [2]);
    report(3);
    report(4);
    assert.deepEqual(reports, [2], 'two steps and no time since the last report');
    report(5);
    assert.deepEqual(reports, [2, 5]);
  });

  it('stays silent while no step is taken, however long', () => {
    const { reports, report, advance } = setup();
    advance(60_000);
    assert.deepEqual(reports, []);
    report(1);
    assert.deepEqual(reports, [1]);
  });

  it('counts the items a call says it took', () => {
    const { reports, report } = setup();
    report(1, 2);
    assert.deepEqual(reports, []);
    report(2, 1);
    assert.deepEqual(reports, [2]);
    report(3, 5);
    assert.deepEqual(reports, [2, 3], 'one call of more items than `everyItems` reports once');
  });
});
