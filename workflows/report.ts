import { proxyActivities } from '@temporalio/workflow';
import type * as activities from '../activities';

/** Every workflow that ends with a report writes it with this activity: reading stored results and rendering charts takes seconds. */
export const { writeReport } = proxyActivities<typeof activities>({
  taskQueue: 'ml-cpu',
  startToCloseTimeout: '5 minutes',
  retry: { initialInterval: '1 second', maximumAttempts: 5 },
});
