import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  applyPromote,
  applyRegister,
  applyRollback,
  championOf,
  configFingerprintOf,
  emptyRegistry,
  registryWorkflowId,
  RegistryRejection,
  validatePromote,
  validateRegister,
  validateRollback,
  type NewModelVersion,
  type RegistryState,
} from '../lib/registry';
import { mlPipelineInputSchema } from '../lib/schemas/ml-pipeline';

const AT = '2026-01-01T00:00:00.000Z';

const candidate = (run: string, testAccuracy: number, testSplitFingerprint = 'split-a'): NewModelVersion => {
  const config = mlPipelineInputSchema.parse({});
  return {
    modelUri: `artifact://models/${run}`,
    lineage: {
      datasetFingerprint: 'data-1',
      manifestUri: 'artifact://manifest.json',
      testSplitFingerprint,
      configFingerprint: configFingerprintOf({ ...config, distributed: null }),
      model: config.model,
      training: config.training,
      distributed: null,
      workflowId: `pipeline-${run}`,
      runId: `run-${run}`,
    },
    evaluation: { testAccuracy, testLoss: 1 - testAccuracy, reportUri: `artifact://reports/${run}.json` },
    compressed: [],
  };
};

/** A registry holding versions of these accuracies, in order. */
function registryOf(...accuracies: number[]): RegistryState {
  let state = emptyRegistry('digits');
  accuracies.forEach((accuracy, i) => (state = applyRegister(state, candidate(`r${i + 1}`, accuracy), AT).state));
  return state;
}

const promote = (state: RegistryState, version: number, fields: { minImprovement?: number; force?: boolean; reason?: string } = {}) =>
  applyPromote(state, { version, ...fields }, AT);

const rejects = (fn: () => unknown, pattern: RegExp) =>
  assert.throws(fn, (err: Error) => {
    assert.ok(err instanceof RegistryRejection, `${err.name}: ${err.message}`);
    assert.match(err.message, pattern);
    return true;
  });

describe('model registry rules', () => {
  it('numbers versions from 1 and registers the same run twice as one version', () => {
    let state = registryOf(0.9);
    const again = applyRegister(state, candidate('r1', 0.9), AT);
    assert.equal(again.version.version, 1);
    assert.equal(again.state.versions.length, 1);
    state = applyRegister(state, candidate('r2', 0.8), AT).state;
    assert.deepEqual(state.versions.map((v) => [v.version, v.lineage.runId, v.registeredAt]), [[1, 'run-r1', AT], [2, 'run-r2', AT]]);
  });

  it('rejects a registration without lineage or with an accuracy that is not a fraction, naming the fields', () => {
    const bad = candidate('r1', 1.5);
    bad.lineage.testSplitFingerprint = '';
    rejects(() => validateRegister(bad), /lineage\.testSplitFingerprint: required.*evaluation\.testAccuracy/);
    validateRegister(candidate('r1', 0.9));
  });

  it('makes the first version promoted the champion', () => {
    const { state, decision } = promote(registryOf(0.5), 1);
    assert.deepEqual(decision, { promoted: true, champion: 1, reason: decision.reason });
    assert.match(decision.reason, /first champion/);
    assert.equal(championOf(state)?.version, 1);
    assert.deepEqual(state.promotions, [{ version: 1, previous: null, at: AT, kind: 'promote', reason: decision.reason }]);
  });

  it('promotes a challenger strictly better on the same test split, by more than minImprovement', () => {
    const state = promote(registryOf(0.9, 0.92, 0.95), 1).state;
    rejects(() => validatePromote(state, { version: 2, minImprovement: 0.03 }), /does not beat champion version 1's 90\.00% by more than minImprovement 0\.03/);
    const { state: after, decision } = promote(state, 3, { minImprovement: 0.03 });
    assert.equal(decision.champion, 3);
    assert.match(decision.reason, /95\.00% beats champion version 1's 90\.00% by 5\.00 pp/);
    assert.deepEqual(after.promotions.at(-1), { version: 3, previous: 1, at: AT, kind: 'promote', reason: decision.reason });
  });

  it('rejects an equal or worse challenger with the reason, and leaves the state alone', () => {
    const state = promote(registryOf(0.9, 0.9, 0.85), 1).state;
    rejects(() => promote(state, 2), /version 2's test accuracy 90\.00% does not beat champion version 1's 90\.00%/);
    rejects(() => promote(state, 3), /85\.00% does not beat/);
    assert.equal(state.champion, 1);
    assert.equal(state.promotions.length, 1);
  });

  it('does not compare accuracies measured on different test splits', () => {
    let state = promote(registryOf(0.8), 1).state;
    state = applyRegister(state, candidate('other-split', 0.99, 'split-b'), AT).state;
    rejects(() => validatePromote(state, { version: 2 }), /different test split than champion version 1/);
  });

  it('force needs a reason, overrides the rules and records the reason', () => {
    const state = promote(registryOf(0.9, 0.7), 1).state;
    rejects(() => validatePromote(state, { version: 2, force: true }), /reason: required with force/);
    rejects(() => validatePromote(state, { version: 2, force: true, reason: '  ' }), /reason: required with force/);
    const { state: after, decision } = promote(state, 2, { force: true, reason: 'v1 misclassifies sevens in production' });
    assert.deepEqual(decision, { promoted: true, champion: 2, reason: 'v1 misclassifies sevens in production' });
    assert.deepEqual(after.promotions.at(-1), { version: 2, previous: 1, at: AT, kind: 'force', reason: 'v1 misclassifies sevens in production' });
  });

  it('rejects an unknown version and the champion itself', () => {
    const state = promote(registryOf(0.9), 1).state;
    rejects(() => validatePromote(state, { version: 7 }), /version: digits has no version 7 \(versions are 1 to 1\)/);
    rejects(() => validatePromote(emptyRegistry('digits'), { version: 1 }), /has no version 1 \(it has no versions yet\)/);
    rejects(() => validatePromote(state, { version: 1 }), /1 is already the champion/);
  });

  it('rolls back to the previous champion, then the one before, and records each rollback', () => {
    let state = promote(registryOf(0.8, 0.85, 0.9), 1).state;
    state = promote(state, 2).state;
    state = promote(state, 3).state;
    const first = applyRollback(state, { reason: 'v3 is slow' }, AT);
    assert.deepEqual(first.decision, { promoted: true, champion: 2, reason: 'v3 is slow' });
    assert.deepEqual(first.state.promotions.at(-1), { version: 2, previous: 3, at: AT, kind: 'rollback', reason: 'v3 is slow' });
    const second = applyRollback(first.state, {}, AT);
    assert.equal(second.state.champion, 1);
    assert.equal(second.decision.reason, 'rolled back from version 2');
    rejects(() => validateRollback(second.state, {}), /digits has no previous champion to roll back to/);
  });

  it('rejects a rollback with no previous champion', () => {
    rejects(() => validateRollback(registryOf(0.9), {}), /no previous champion/);
    rejects(() => validateRollback(promote(registryOf(0.9), 1).state, {}), /no previous champion/);
  });

  it('fingerprints configs by value, whatever the key order, and tells different ones apart', () => {
    const config = mlPipelineInputSchema.parse({});
    const fingerprint = configFingerprintOf({ preprocess: config.preprocess, model: config.model, training: config.training, distributed: undefined });
    const reordered = Object.fromEntries(Object.entries(config.model).reverse());
    assert.match(fingerprint, /^[0-9a-f]{16}$/);
    assert.equal(configFingerprintOf({ distributed: null, training: config.training, model: reordered, preprocess: config.preprocess }), fingerprint);
    assert.notEqual(configFingerprintOf({ ...config, training: { ...config.training, epochs: 6 }, distributed: null }), fingerprint);
    assert.notEqual(configFingerprintOf({ ...config, distributed: { numWorkers: 2 } }), fingerprint);
  });

  it('names the registry workflow after the model', () => {
    assert.equal(registryWorkflowId('mnist-digits'), 'model-registry-mnist-digits');
  });
});
