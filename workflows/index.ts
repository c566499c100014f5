export * from './hyperparameter-sweep';
export * from './ml-pipeline';
export * from './train-model';
