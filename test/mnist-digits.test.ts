import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { materializeMnistDigits } from '../lib/datasets/mnist-digits';

describe('built-in MNIST digits', () => {
  it('are written once, complete, even when asked for concurrently', async () => {
    const root = mkdtempSync(join(tmpdir(), 'digits-'));
    const dir = join(root, 'mnist-digits');
    const [a, b] = await Promise.all([materializeMnistDigits(dir), materializeMnistDigits(dir)]);
    assert.equal(a, dir);
    assert.equal(b, dir);
    assert.deepEqual(readdirSync(root), ['mnist-digits'], 'no staging folder is left behind');
    const classes = readdirSync(dir).sort();
    assert.deepEqual(classes, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    const files = classes.reduce((n, c) => n + readdirSync(join(dir, c)).length, 0);
    assert.equal(files, 10_000);
    const meta = await sharp(join(dir, '3', '00000.png')).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], ['png', 28, 28]);
  });
});
