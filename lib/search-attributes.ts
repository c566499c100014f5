import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** Search attributes every run carries so it can be found in the Web UI (`MlModel = "mnist-digits"`). */
export const ML_MODEL = defineSearchAttributeKey('MlModel', SearchAttributeType.KEYWORD);
export const ML_STAGE = defineSearchAttributeKey('MlStage', SearchAttributeType.KEYWORD);
export const SEARCH_ATTRIBUTES = [ML_MODEL, ML_STAGE];
