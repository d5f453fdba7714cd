// Lint: typescript-eslint's recommended rules, plus the type-checked rules that catch what this
// code base can get wrong (promises left floating or misused, awaits of non-promises, switches
// that miss a case of a union). Formatting is Biome's (biome.json), not ESLint's.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'test/fixtures/types/**', 'examples/**', '*.mjs', '*.cjs'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // node:test's test() and describe() return promises the runner itself awaits.
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite', 'before', 'after', 'beforeEach', 'afterEach'] }] },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // Typed events: an EventEmitter subclass merged with an interface of on/emit overloads is
      // how Node's own typings and pixl-server's declarations type events.
      '@typescript-eslint/no-unsafe-declaration-merging': 'off',
      // An interface that extends another names a public type (MultiServer.Config) users import.
      '@typescript-eslint/no-empty-object-type': ['error', { allowInterfaces: 'with-single-extends' }],
      // component.ts references pixl-server's declarations so that its emitted .d.ts does too.
      '@typescript-eslint/triple-slash-reference': ['error', { path: 'always', types: 'prefer-import', lib: 'always' }],
      '@typescript-eslint/no-require-imports': 'off',
      // `export =` with a namespace beside the class is how a CommonJS module exports its types.
      '@typescript-eslint/no-namespace': 'off',
    },
  },
  {
    // Declarations of untyped third-party modules (pixl-server and its companions ship none).
    files: ['src/types/**/*.d.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off', '@typescript-eslint/no-empty-object-type': 'off' },
  },
);
