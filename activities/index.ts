export * from './preprocessing';
export * from './evaluation';
export * from './training';
export * from './sweep';
export * from './distributed';
export * from './round-history';
