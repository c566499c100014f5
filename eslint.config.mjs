import tseslint from 'typescript-eslint';
import { builtinModules } from 'node:module';

const nodeBuiltins = [...builtinModules, ...builtinModules.map((name) => `node:${name}`)];

const definitionsOnly = {
  regex: '^(\\.\\./)+workflows(/(?!definitions$).*)?$',
  allowTypeImports: true,
  message: 'Import definitions from workflows/definitions; other workflow modules only as types.',
};
/** The modules whose sharp operations run through lib/sharp-gate (libvips' error buffer is shared by the whole process). */
const sharpModules = ['lib/preprocessing/transform.ts', 'lib/datasets/mnist-digits.ts', 'lib/reports/png.ts'];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.data/**', 'eslint.config.mjs'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['describe', 'it', 'suite', 'test'] }] },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-require-imports': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  {
    // Workflow code runs in Temporal's deterministic sandbox: no Node built-ins, no activity implementations.
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: nodeBuiltins.map((name) => ({ name, message: 'Workflow code must not import Node built-ins.' })),
          patterns: [
            {
              group: ['../activities', '../activities/*'],
              allowTypeImports: true,
              message: 'Workflows may import activity types only.',
            },
            { group: ['@tensorflow/*', 'sharp', 'prom-client'], message: 'Workflows run no side effects.' },
          ],
        },
      ],
    },
  },
  {
    // Signal, query and update definitions live in workflows/definitions.ts so that nothing else needs workflow code.
    files: ['activities/**/*.ts', 'lib/**/*.ts'],
    ignores: sharpModules,
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            definitionsOnly,
            { group: ['sharp'], allowTypeImports: true, message: `Run sharp in one of ${sharpModules.join(', ')}, through withSharp (lib/sharp-gate).` },
          ],
        },
      ],
    },
  },
  {
    files: sharpModules,
    rules: { 'no-restricted-imports': ['error', { patterns: [definitionsOnly] }] },
  },
  {
    // What ships (and benchmarks) must build without the tests: the Docker image copies no test/.
    files: ['bench/**/*.ts', 'scripts/**/*.ts', 'workers/**/*.ts', 'cli/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['**/test', '**/test/*'], message: 'Only tests may import from test/.' }] }],
    },
  },
);
