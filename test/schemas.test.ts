import { ApplicationFailure } from '@temporalio/common';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mlPipelineInputSchema } from '../lib/schemas/ml-pipeline';
import { batchSizeFor, batchingSchema, preprocessSpecSchema } from '../lib/schemas/preprocess';
import { preprocessDatasetInputSchema } from '../lib/schemas/preprocess-dataset';
import { parseWorkflowInput } from '../lib/validate';

const parse = (input: unknown) => parseWorkflowInput('mlPipeline', mlPipelineInputSchema, input);

function failure(input: unknown): ApplicationFailure {
  try {
    parse(input);
  } catch (err) {
    assert.ok(err instanceof ApplicationFailure);
    return err;
  }
  assert.fail('expected the input to be refused');
}

describe('mlPipeline input schema', () => {
  it('fills every default from {} (and from no input at all)', () => {
    const config = parse({});
    assert.deepEqual(config, parse(undefined));
    assert.deepEqual(config.dataset, { source: { format: 'builtin', name: 'mnist-digits' }, maxImages: 3000 });
    assert.equal(config.model.architecture, 'cnn');
    assert.equal(config.training.epochs, 5);
    assert.equal(config.preprocess.width, 28);
  });

  it('keeps what is given and defaults the rest of the same object', () => {
    const config = parse({ training: { epochs: 2 } });
    assert.equal(config.training.epochs, 2);
    assert.equal(config.training.batchSize, 64);
  });

  it('asks the registry to promote if better by default, and names a bad registry field', () => {
    assert.deepEqual(parse({}).registry, { promote: 'if-better', minImprovement: 0 });
    assert.deepEqual(parse({ registry: { promote: 'never' } }).registry, { promote: 'never', minImprovement: 0 });
    assert.match(failure({ registry: { promote: 'sometimes', minImprovement: 1 } }).message, /registry\.promote: .*registry\.minImprovement: /);
  });

  it('is a non-retryable InvalidInput failure naming each bad field', () => {
    const error = failure({ training: { epochs: 0, batchSize: 'big' }, extra: true, model: { dropout: 2, widths: [] } });
    assert.equal(error.type, 'InvalidInput');
    assert.equal(error.nonRetryable, true);
    for (const field of ['training.epochs', 'training.batchSize', 'extra: unknown field', 'model.dropout', 'model.widths: unknown field']) {
      assert.ok(error.message.includes(field), `"${error.message}" should name ${field}`);
    }
  });

  it('refuses input that is not an object', () => {
    assert.match(failure('train please').message, /\(input\): /);
    assert.match(failure([1]).message, /\(input\): /);
  });
});

describe('preprocessDataset input schema', () => {
  const parse = (input: unknown) => parseWorkflowInput('preprocessDataset', preprocessDatasetInputSchema, input);

  it('reads the string shorthand as a built-in set or a folder', () => {
    assert.deepEqual(parse({}).dataset, { source: { format: 'builtin', name: 'mnist-digits' }, maxImages: null });
    assert.deepEqual(parse({ dataset: { source: 'builtin:fashion-mnist' } }).dataset.source, { format: 'builtin', name: 'fashion-mnist' });
    assert.deepEqual(parse({ dataset: { source: 'photos/2026' } }).dataset.source, { format: 'folder', path: 'photos/2026' });
    // Already normalized input (a parent workflow passing its parsed config on) parses to itself.
    const config = parse({ dataset: { source: 'photos' } });
    assert.deepEqual(parse(config), config);
  });

  it('refuses IDX sources whose image and label lists differ in length, and unknown built-ins', () => {
    assert.throws(() => parse({ dataset: { source: { format: 'idx', images: ['a', 'b'], labels: ['a'] } } }), /2 image files but 1 label files/);
    assert.throws(() => parse({ dataset: { source: 'builtin:imagenet' } }), /unknown built-in dataset "builtin:imagenet"; available: builtin:mnist-digits, builtin:fashion-mnist/);
  });

  it('sizes batches to about 64 MiB of shard rows unless told', () => {
    const batching = batchingSchema.parse({});
    assert.equal(batchSizeFor(preprocessSpecSchema.parse({}), batching), 2000);
    assert.equal(batchSizeFor(preprocessSpecSchema.parse({ width: 224, height: 224, channels: 3 }), batching), 445);
    assert.equal(batchSizeFor(preprocessSpecSchema.parse({ width: 224, height: 224, channels: 3, storage: 'float32' }), batching), 111);
    assert.equal(batchSizeFor(preprocessSpecSchema.parse({}), batchingSchema.parse({ size: 10 })), 10);
  });
});
