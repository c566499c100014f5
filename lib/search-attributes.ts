import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** Search attributes every run carries so it can be found in the Web UI (`MlModel = "mnist-digits"`). */
export const ML_MODEL = defineSearchAttributeKey('MlModel', SearchAttributeType.KEYWORD);
export const ML_STAGE = defineSearchAttributeKey('MlStage', SearchAttributeType.KEYWORD);
export const SEARCH_ATTRIBUTES = [ML_MODEL, ML_STAGE];
/** Set by Temporal on every run a Schedule starts (the schedule's ID); not one of the project's own. */
export const TEMPORAL_SCHEDULED_BY_ID = defineSearchAttributeKey('TemporalScheduledById', SearchAttributeType.KEYWORD);
