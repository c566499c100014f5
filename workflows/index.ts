export * from './compress-model';
export * from './definitions';
export * from './hyperparameter-sweep';
export * from './ml-pipeline';
export * from './preprocess-dataset';
export * from './train-model';
