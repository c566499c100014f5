export * from './datasets';
export * from './evaluation';
export * from './training';
