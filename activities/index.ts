export * from './preprocessing';
export * from './evaluation';
export * from './compression-evaluation';
export * from './training';
export * from './sweep';
export * from './quantization';
export * from './pruning';
export * from './compression';
