import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { splitOf } from '../lib/split';

const sha = (i: number) => createHash('sha256').update(`image-${i}`).digest('hex');

describe('splitOf', () => {
  it('depends on the content hash alone, so adding images never moves existing ones', () => {
    const before = Array.from({ length: 500 }, (_, i) => splitOf(sha(i), 0.1, 0.2));
    const after = Array.from({ length: 1000 }, (_, i) => splitOf(sha(i), 0.1, 0.2));
    assert.deepEqual(after.slice(0, 500), before);
  });

  it('honours the requested fractions', () => {
    const counts = { train: 0, validation: 0, test: 0 };
    for (let i = 0; i < 20_000; i++) counts[splitOf(sha(i), 0.1, 0.2)]++;
    assert.ok(Math.abs(counts.test / 20_000 - 0.2) < 0.01, JSON.stringify(counts));
    assert.ok(Math.abs(counts.validation / 20_000 - 0.1) < 0.01, JSON.stringify(counts));
  });
});
