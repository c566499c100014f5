export * from './ml-pipeline';
export * from './train-model';
