import type { LearningRateSchedule } from '../schemas/model';

/** The learning rate for a 0-based `epoch` out of `epochs`. */
export function learningRateAt(schedule: LearningRateSchedule, initial: number, epoch: number, epochs: number): number {
  switch (schedule.type) {
    case 'constant':
      return initial;
    case 'step':
      return initial * schedule.factor ** Math.floor(epoch / schedule.everyEpochs);
    case 'exponential':
      return initial * schedule.decay ** epoch;
    case 'cosine': {
      const progress = epochs > 1 ? epoch / (epochs - 1) : 1;
      return schedule.minLearningRate + ((initial - schedule.minLearningRate) * (1 + Math.cos(Math.PI * progress))) / 2;
    }
  }
}
