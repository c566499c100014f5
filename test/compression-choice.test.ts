import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { baselineRow, chooseVariant, renderTable, variantRows, type VariantMeasurement, type VariantOutcome } from '../lib/compression/choice';
import type { CompressedModel } from '../lib/compression/compressed-model';
import { budgetSchema, compressModelInputSchema, type CompressionBudget } from '../lib/schemas/compress-model';

const measurement = (variant: string, figures: Partial<VariantMeasurement> & { batchMs?: number } = {}): VariantMeasurement => ({
  variant,
  format: 'tfjs-layers',
  runtime: 'tfjs-node',
  accuracy: 0.9,
  loss: 0.3,
  parameters: 1000,
  nonZeroParameters: 1000,
  bytes: 4000,
  gzipBytes: 3600,
  latencyMs: { single: 0.5, batch: figures.batchMs ?? 10, batchSize: 256 },
  reportUri: `artifact://reports/${variant}.json`,
  ...figures,
});
const model = (name: string, alternates?: CompressedModel['alternates']): CompressedModel => ({ format: 'tfjs-layers', uri: `artifact://models/${name}`, bytes: 1, alternates, details: { name } });
const done = (variant: string, figures: Parameters<typeof measurement>[1], alternates?: CompressedModel['alternates']): VariantOutcome => ({
  variant,
  method: 'quantize',
  status: 'done',
  model: model(variant, alternates),
  measurement: measurement(variant, figures),
});
const failed = (variant: string, error: string): VariantOutcome => ({ variant, method: 'prune', status: 'failed', error });
const budget = (fields: Partial<CompressionBudget> = {}) => budgetSchema.parse(fields);

function choose(outcomes: VariantOutcome[], fields: Partial<CompressionBudget> = {}) {
  const base = baselineRow(model('baseline'), measurement('baseline'), budget(fields));
  const rows = variantRows(base, outcomes, budget(fields));
  return { base, rows, chosen: chooseVariant(base, rows, budget(fields)) };
}

describe('compression choice', () => {
  it('computes each row against the baseline: accuracy delta, size, parameter and latency ratios', () => {
    const { base, rows } = choose([done('uint8', { accuracy: 0.895, gzipBytes: 900, nonZeroParameters: 250, batchMs: 5 })]);
    assert.equal(base.sizeRatio, 1);
    assert.equal(base.accuracyDelta, 0);
    const [row] = rows;
    assert.ok(row?.status === 'done');
    assert.ok(Math.abs(row.accuracyDelta - -0.005) < 1e-12);
    assert.equal(row.sizeBytes, 900);
    assert.equal(row.sizeRatio, 4);
    assert.equal(row.parameterRatio, 4);
    assert.equal(row.speedup, 2);
    assert.equal(row.withinBudget, true);
    assert.deepEqual(row.details, { name: 'uint8' });
  });

  it('sizes a model by its smallest stored form: a sparse alternate smaller than the gzipped model counts', () => {
    const { rows } = choose([done('prune-80', { gzipBytes: 2000 }, [{ label: 'sparse', uri: 'artifact://sparse', bytes: 1500, gzipBytes: 800 }])]);
    assert.ok(rows[0]?.status === 'done');
    assert.equal(rows[0].sizeBytes, 800);
    assert.equal(rows[0].sizeRatio, 4.5);
  });

  it('picks the best objective among variants within the budget, skipping better ones that drop too much', () => {
    const outcomes = [
      done('float16', { accuracy: 0.9, gzipBytes: 1800, batchMs: 9 }),
      done('uint8', { accuracy: 0.892, gzipBytes: 900, batchMs: 8 }),
      done('tiny', { accuracy: 0.85, gzipBytes: 100, batchMs: 1 }),
      done('fast', { accuracy: 0.899, gzipBytes: 3000, batchMs: 3, nonZeroParameters: 900 }),
    ];
    assert.equal(choose(outcomes).chosen.variant, 'uint8');
    assert.match(choose(outcomes).chosen.reason, /best size of the 3 variant\(s\) within 1 pp .*900 bytes stored \(gzip\) against 3600/);
    assert.equal(choose(outcomes, { objective: 'latency' }).chosen.variant, 'fast');
    assert.equal(choose(outcomes, { objective: 'parameters' }).chosen.variant, 'fast');
    assert.equal(choose(outcomes, { maxAccuracyDrop: 0.1 }).chosen.variant, 'tiny');
    assert.equal(choose(outcomes, { maxAccuracyDrop: 0 }).chosen.variant, 'float16');
    assert.equal(choose(outcomes).chosen.modelUri, 'artifact://models/uint8');
  });

  it('counts a drop of exactly the budget as within it', () => {
    const { rows, chosen } = choose([done('edge', { accuracy: 0.9 - 0.01, gzipBytes: 100 })]);
    assert.ok(rows[0]?.status === 'done' && rows[0].withinBudget);
    assert.equal(chosen.variant, 'edge');
  });

  it('breaks ties on the objective by accuracy, then by order in the table', () => {
    assert.equal(choose([done('a', { accuracy: 0.895, gzipBytes: 900 }), done('b', { accuracy: 0.898, gzipBytes: 900 })]).chosen.variant, 'b');
    assert.equal(choose([done('a', { accuracy: 0.898, gzipBytes: 900 }), done('b', { accuracy: 0.898, gzipBytes: 900 })]).chosen.variant, 'a');
  });

  it('keeps the baseline when no variant qualifies, saying why', () => {
    const { chosen, base } = choose([done('lossy', { accuracy: 0.7, gzipBytes: 100 }), done('bigger', { gzipBytes: 5000 })]);
    assert.equal(chosen.variant, 'baseline');
    assert.equal(chosen.modelUri, base.modelUri);
    assert.match(chosen.reason, /none of the 2 measured variants is within 1 pp .* the uncompressed model stays/);
  });

  it('leaves failed rows in place with their reason, never choosing them', () => {
    const { rows, chosen } = choose([failed('prune-80', 'modelUri: not prunable'), done('uint8', { gzipBytes: 900 })]);
    assert.deepEqual(rows[0], { variant: 'prune-80', method: 'prune', status: 'failed', error: 'modelUri: not prunable' });
    assert.equal(chosen.variant, 'uint8');
    const allFailed = choose([failed('prune-80', 'boom')]).chosen;
    assert.equal(allFailed.variant, 'baseline');
    assert.match(allFailed.reason, /no variant produced a model/);
  });

  it('renders the table as Markdown: the baseline first, the chosen variant marked, a failure with its reason', () => {
    const { base, rows, chosen } = choose([failed('prune-80', 'a | b'), done('uint8', { accuracy: 0.895, gzipBytes: 900 })]);
    const markdown = renderTable({ modelName: 'm', budget: budget(), baseline: base, rows, chosen });
    const lines = markdown.split('\n');
    assert.match(lines[0]!, /^\| variant \| runtime \| accuracy \| Δ pp \|/);
    assert.match(lines[2]!, /^\| baseline \| tfjs-node \| 90\.00% \| \+0\.00 \|/);
    assert.match(lines[3]!, /^\| prune-80 \| failed: a \\\| b \|/);
    assert.match(lines[4]!, /^\| \*\*uint8\*\* ✓ \| tfjs-node \| 89\.50% \| -0\.50 \| 1000 \(1000\) \| 3\.9 KiB \| 0\.9 KiB \| 4\.00x \|/);
    assert.match(lines.at(-1)!, /^Chosen \(objective: size, max accuracy drop 1 pp\): uint8: best size/);
  });
});

describe('compressModel input', () => {
  const uris = { modelUri: 'artifact://m', manifestUri: 'artifact://d' };
  const issues = (input: object) => {
    const result = compressModelInputSchema.safeParse({ ...uris, ...input });
    return result.success ? [] : result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
  };

  it('defaults to one variant of each method and prune-then-int8, named from their methods', () => {
    const config = compressModelInputSchema.parse(uris);
    assert.deepEqual(config.variants.map((v) => v.name), ['float16', 'uint8', 'int8', 'prune-80', 'structured-50', 'distill', 'prune-80+int8']);
    assert.deepEqual(config.budget, { maxAccuracyDrop: 0.01, objective: 'size' });
    assert.equal(config.parallelism, 2);
  });

  it('names the field of each bad input', () => {
    assert.match(issues({ variants: [{ method: 'zip' }] })[0]!, /^variants\.0\.method: Invalid discriminator value/);
    assert.match(issues({ variants: [{ method: 'prune', finalSparsity: 1 }] })[0]!, /^variants\.0\.finalSparsity: Too big/);
    assert.match(issues({ variants: [{ method: 'structured-prune', fraction: -0.1 }] })[0]!, /^variants\.0\.fraction: Too small/);
    assert.match(issues({ variants: [{ method: 'chain', steps: [{ method: 'prune' }, { method: 'zip' }] }] })[0]!, /^variants\.0\.steps\.1\.method:/);
    assert.match(issues({ modelUri: 'https://example.com/model' })[0]!, /^modelUri: must be an artifact:\/\/ URI/);
    assert.match(issues({ budget: { objective: 'speed' } })[0]!, /^budget\.objective:/);
  });

  it('refuses two rows of the same name, the baseline and a distill variant’s comparison row included', () => {
    assert.match(issues({ variants: [{ method: 'quantize' }, { method: 'quantize', dtype: 'uint8' }] })[0]!, /^variants\.1\.name: "uint8" names another row/);
    assert.match(issues({ variants: [{ method: 'quantize', name: 'baseline' }] })[0]!, /^variants\.0\.name: "baseline"/);
    assert.match(issues({ variants: [{ method: 'distill' }, { method: 'quantize', name: 'distill-without-distillation' }] })[0]!, /^variants\.1\.name/);
    assert.deepEqual(issues({ variants: [{ method: 'distill', compareWithoutDistillation: false }, { method: 'quantize', name: 'distill-without-distillation' }] }), []);
  });
});
