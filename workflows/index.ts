export * from './compress-model';
export * from './definitions';
export * from './distributed-train';
export * from './hyperparameter-sweep';
export * from './ml-pipeline';
export * from './model-registry';
export * from './preprocess-dataset';
export * from './train-model';
