/** @jest-config-loader esbuild-register */
import type { Config } from 'jest';

type Project = NonNullable<Config['projects']>[number] & object;

/**
 * Tests run TypeScript through @swc/jest (no type checking; `npm run typecheck` does that).
 *
 * Jest runs without `--experimental-vm-modules`: under that flag V8 cannot reuse a module's
 * compilation across the test files of one worker, and every file compiled its whole module graph
 * again. Without it, jest's sandbox can neither `require` an ES module nor run an `import()`, so
 * the packages that do either are transformed to CommonJS like our own sources (an `import()`
 * becomes a `require`): published as ESM only (jose, the AI SDK, oidc-provider, zod's locale files)
 * or loading a module with `import()` from their CommonJS build (PGlite, unpdf, gaxios, the OTLP
 * exporter). A test that fails with "Must use import to load ES Module" or "A dynamic import
 * callback was invoked without --experimental-vm-modules" names the next package for this list.
 */
const TRANSFORMED_PACKAGES = [
  'jose',
  'ai',
  '@ai-sdk',
  '@workflow',
  'oidc-provider',
  'zod',
  '@electric-sql/pglite',
  'unpdf',
  // gaxios imports node-fetch, which needs the three after it.
  'gaxios',
  'node-fetch',
  'fetch-blob',
  'formdata-polyfill',
  'data-uri-to-buffer',
  '@opentelemetry/otlp-exporter-base',
  // What linkedom's CommonJS build requires to parse HTML and match CSS selectors.
  'css-select',
  'css-what',
  'boolbase',
  'nth-check',
  'domhandler',
  'domelementtype',
  'domutils',
  'dom-serializer',
  'entities',
  'cssomnom',
];

const swc = (syntax: 'typescript' | 'ecmascript') =>
  ['@swc/jest', { jsc: { target: 'es2022', parser: { syntax } }, module: { type: 'commonjs' } }] satisfies [string, object];

const shared = {
  testEnvironment: 'node',
  // The workspace packages resolve through their `switchboard-source` export condition to their
  // TypeScript sources (transformed like ours), so a test never runs a stale dist/ build.
  testEnvironmentOptions: { customExportConditions: ['node', 'node-addons', 'switchboard-source'] },
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.(t|j|mj)s$': swc('typescript'),
    '/node_modules/.+\\.cjs$': swc('ecmascript'),
  },
  // Everything in node_modules is left as it is, except the files of the packages above (nested or not).
  transformIgnorePatterns: [`^(?!.*/node_modules/(${TRANSFORMED_PACKAGES.join('|')})/).*/node_modules/`],
  moduleFileExtensions: ['ts', 'js', 'mjs', 'cjs', 'json'],
  // unpdf's CommonJS build imports its PDF.js bundle, which is exported for `import` only.
  moduleNameMapper: { '^unpdf/pdfjs$': '<rootDir>/node_modules/unpdf/dist/pdfjs.mjs' },
} satisfies Project;

/**
 * A suite that needs servers: the global setup starts one private redis-server for the run, finds
 * or starts a PostgreSQL server and builds the packages' dist/ (jest runs it once for the run,
 * and only when a test of such a suite is selected).
 */
const withServers = (name: string, globalSetup = 'global-setup.ts'): Project => ({
  ...shared,
  displayName: name,
  roots: [`<rootDir>/test/${name}`],
  globalSetup: `<rootDir>/test/support/${globalSetup}`,
  globalTeardown: '<rootDir>/test/support/global-teardown.ts',
});

const config: Config = {
  projects: [
    // Pure units: no Redis, no database, no Switchboard process, no built packages, so no global
    // setup (`npm run test:unit`).
    { ...shared, displayName: 'unit', roots: ['<rootDir>/test/unit'] },
    withServers('integration'),
    withServers('security'),
    withServers('faults'),
    withServers('packages'),
    // Its files also share one Chromium, started by its setup.
    withServers('browser', 'browser-global-setup.ts'),
    // The guides run as tests: each recipe applied to a scratch copy of the tree must typecheck and
    // pass the unit tests it names (no servers).
    { ...shared, displayName: 'docs', roots: ['<rootDir>/test/docs'] },
  ],
  // Three workers on CI's two cores: a test file spends about a fifth of its time waiting on timers,
  // other processes and the database, and the third worker fills those gaps.
  maxWorkers: 3,
  // A test file whose libraries leave a process-wide hook behind (a listener, an observer, a
  // polyfill) keeps its whole module registry in its worker: a worker whose heap has grown past
  // this is replaced after its file, before its garbage collection costs more than a fresh start.
  workerIdleMemoryLimit: '700MB',
  // Also the default for hooks: an app's start (PGlite, Redis, sockets) on two cores shared with
  // other busy processes can take well over ten seconds; a test that hangs still fails.
  testTimeout: 60_000,
  // Jest's order, with the files whose size understates their time first in a run without timings.
  testSequencer: '<rootDir>/test/support/test-sequencer.cjs',
};

export default config;
