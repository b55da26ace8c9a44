// ESLint (flat config). TypeScript is linted with typescript-eslint's type-checked rules through the
// `typescript` 6.x JS API (`npm run typecheck` runs TypeScript 7, see docs/decisions/0196); the
// browser console in web/ is plain JS and is linted without types. Formatting is Prettier's job:
// eslint-config-prettier, last, turns off every rule that would fight it.
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import { defineConfig } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

// Doors: each side effect is reached through one module (docs/architecture.md, "Doors"). SQL and the
// tables live in src/models (repositories), model types and LangChain in src/ai (the gateway), BullMQ's
// queue objects in src/producers (the registry) and src/workers (the worker pool).
const SQL = {
  group: ['drizzle-orm', 'drizzle-orm/*', 'pg', '@electric-sql/pglite', '@electric-sql/pglite/*'],
  message: 'SQL lives in src/models/*-repository.ts: add a repository method (transactions too).',
};
const TABLES = {
  group: ['**/models/schema', '**/models/schema/*', '**/models/database'],
  allowTypeImports: true,
  message: 'Tables and the database handle stay in src/models: import row types only, and query through a repository.',
};
const LANGCHAIN = {
  group: ['@langchain/*', 'langchain', 'langchain/*'],
  message: 'Model messages and tools come from src/ai (model-messages.ts, model-tools.ts); only src/ai imports LangChain.',
};
const QUEUES = {
  name: 'bullmq',
  importNames: ['Queue', 'QueueEvents', 'QueueEventsProducer', 'FlowProducer', 'Worker'],
  allowTypeImports: true,
  message: 'Queues are reached through QueueRegistry (src/producers/registry.ts: enqueue, job, remove, isLive, rateLimit, counts).',
};
/** The rule for a folder: the doors it must not go around (import paths by name, the rest by pattern). */
const doors = (...restrictions) => ({
  '@typescript-eslint/no-restricted-imports': [
    'error',
    { paths: restrictions.filter((r) => 'name' in r), patterns: restrictions.filter((r) => 'group' in r) },
  ],
});

export default defineConfig(
  {
    ignores: [
      '**/node_modules/',
      '**/dist/',
      'coverage/',
      '.data/',
      '.build/',
      'sdk/',
      'test-artifacts/',
      'bench/results/',
      'packages/*/.dist-*/',
      // a fixture copied next to a generated client by its test; it does not compile where it sits
      'test/support/sdk/',
    ],
  },
  {
    linterOptions: { reportUnusedDisableDirectives: 'error' },
  },
  {
    files: ['**/*.{ts,tsx,mts,cts}'],
    extends: [js.configs.recommended, tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      // one program, the root tsconfig's: the packages' own tsconfigs resolve each other through
      // dist/ (built declarations), which a checkout does not have
      parserOptions: { project: './tsconfig.json', tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      'no-empty': ['error', { allowEmptyCatch: false }],
      // a `let` assigned once but read first by a closure (a callback that refers to its own result) stays `let`
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      // `interface XOptions extends YOptions {}` names a public options type that may grow
      '@typescript-eslint/no-empty-object-type': ['error', { allowInterfaces: 'with-single-extends' }],
      // passing on a caught error as it came (it is `unknown`) is allowed, as only-throw-error allows rethrowing it
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingAny: true, allowThrowingUnknown: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // off: `async` without `await` is deliberate here, it makes a function that throws reject instead
      '@typescript-eslint/require-await': 'off',
      // off: it judges with TypeScript 6.0, which infers some types differently from the TypeScript 7 that
      // type-checks; removing what it flagged broke the TS 7 build in four files (see docs/decisions/0197)
      '@typescript-eslint/no-unnecessary-type-assertion': 'off',
      // an error must not vanish: a `.catch(() => {})` logs why on the component's logger, or waits with
      // settled() (src/lib/settled.ts) when the promise's owner reports it, or says why in its disable line
      'no-restricted-syntax': [
        'error',
        {
          selector:
            "CallExpression[callee.property.name='catch'] > ArrowFunctionExpression:matches([body.type='BlockStatement'][body.body.length=0], [body.type='Identifier'][body.name='undefined'], [body.type='Literal'][body.raw='null'])",
          message:
            'Do not swallow a rejection: log it with a reason, use settled() where its owner reports it, or say why it cannot matter in an eslint-disable-next-line comment.',
        },
      ],
    },
  },
  {
    files: ['src/**/*.ts'],
    rules: doors(SQL, TABLES, LANGCHAIN, QUEUES),
  },
  {
    files: ['src/models/**/*.ts'],
    rules: doors(LANGCHAIN, QUEUES),
  },
  {
    files: ['src/ai/**/*.ts'],
    rules: doors(SQL, TABLES, QUEUES),
  },
  {
    files: ['src/producers/**/*.ts', 'src/workers/**/*.ts'],
    rules: doors(SQL, TABLES, LANGCHAIN),
  },
  {
    // the composition root opens the database it hands to the repositories
    files: ['src/app/stores.ts'],
    rules: doors(SQL, LANGCHAIN, QUEUES),
  },
  {
    // tests and benchmarks read JSON bodies and socket payloads, which are `any` by nature, and
    // check them with expect(); jest's expect(obj.method) is not an unbound call
    files: ['test/**', 'bench/**'],
    rules: {
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/unbound-method': 'off',
      // fake models and probes stringify request bodies loosely to match on them; a wrong text fails the test itself
      '@typescript-eslint/no-base-to-string': 'off',
      '@typescript-eslint/restrict-template-expressions': 'off',
      'no-restricted-syntax': 'off',
    },
  },
  {
    files: ['**/*.{js,cjs,mjs}'],
    extends: [js.configs.recommended],
    languageOptions: { globals: globals.node },
    rules: {
      'no-empty': ['error', { allowEmptyCatch: false }],
      'no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs' },
  },
  {
    // the web console and the Swagger UI starter run in the browser, not in Node
    files: ['web/**/*.js', 'src/http/openapi/docs-init.js'],
    languageOptions: { globals: globals.browser },
  },
  {
    files: ['src/http/openapi/docs-init.js'],
    languageOptions: { sourceType: 'script', globals: { SwaggerUIBundle: 'readonly', SwaggerUIStandalonePreset: 'readonly' } },
  },
  prettier,
);
