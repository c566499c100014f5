import { ApplicationFailure } from '@temporalio/common';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mlPipelineInputSchema } from '../lib/schemas/ml-pipeline';
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
    assert.equal(config.dataset.source, 'builtin:mnist-digits');
    assert.equal(config.model.architecture, 'cnn');
    assert.equal(config.training.epochs, 5);
    assert.equal(config.preprocess.width, 28);
  });

  it('keeps what is given and defaults the rest of the same object', () => {
    const config = parse({ training: { epochs: 2 } });
    assert.equal(config.training.epochs, 2);
    assert.equal(config.training.batchSize, 64);
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
