import type { ArtifactStore } from '../artifacts';
import { optimizerFiles, optimizerWeightsFromFiles } from '../training/checkpoint';
import type { TrainingExtension } from '../training/extension';
import type { TensorFlow } from '../tf';

/**
 * Carries a partition's optimizer state (Adam's step count and moments) from one round of distributed training to
 * the next: restored before the round's first step, stored when it ends. Without it each round starts a fresh
 * optimizer on the new global weights.
 */
export interface OptimizerStateExtensionSpec {
  kind: 'optimizer-state';
  /** The state the previous round of this partition ended with; null in its first round. */
  restoreFrom: string | null;
}

export function optimizerStateExtension(tf: TensorFlow, store: ArtifactStore, spec: OptimizerStateExtensionSpec): TrainingExtension {
  return {
    async start(model, state) {
      // A resumed attempt restored the optimizer with its checkpoint, further along than the round's start.
      const fresh = state.epoch === 0 && state.batch === 0;
      if (!spec.restoreFrom || !fresh) return;
      await model.optimizer.setWeights(optimizerWeightsFromFiles(tf, await store.readDirectory(spec.restoreFrom)));
    },
    async finish(model) {
      const { uri } = await store.putDirectory(await optimizerFiles(tf, model.optimizer));
      return { optimizerStateUri: uri };
    },
  };
}
