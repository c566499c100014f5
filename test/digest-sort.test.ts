import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { sortByLeadingDigest } from '../lib/digest-sort';

const digest = (i: number) => createHash('sha256').update(String(i)).digest('hex');

describe('sortByLeadingDigest', () => {
  it('orders content-hash lines exactly as a string sort does, lines sharing their first digits included', () => {
    const lines = Array.from({ length: 5000 }, (_, i) => `${digest(i)} class-${i % 7}`);
    // Same first digits, different after: the packed number alone cannot order these.
    const shared = digest(-1).slice(0, 13);
    lines.push(`${shared}f${digest(-2).slice(14)} b`, `${shared}0${digest(-3).slice(14)} a`, `${shared}0${digest(-3).slice(14)} A`);
    lines.push(lines[10]!);
    const before = [...lines];
    assert.deepEqual(sortByLeadingDigest(lines), [...lines].sort());
    assert.deepEqual(lines, before, 'the input is left as it was');
  });

  it('sorts lines that do not all begin with a lowercase digest as strings', () => {
    const lines = [`${digest(2)} x`, 'not a digest', `${digest(1)} y`, `${digest(0).toUpperCase()} z`];
    assert.deepEqual(sortByLeadingDigest(lines), [...lines].sort());
    assert.deepEqual(sortByLeadingDigest([]), []);
  });
});
