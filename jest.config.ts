/** @jest-config-loader esbuild-register */
import type { Config } from 'jest';

type Project = NonNullable<Config['projects']>[number] & object;

/**
 * Tests run TypeScript through @swc/jest (no type checking; `npm run typecheck` does that).
 * jose and the AI SDK (`ai`, `@ai-sdk/*`: the UI message stream tests) are published as ESM only, so
 * they are transformed to CommonJS like our own sources.
 */
const shared = {
  testEnvironment: 'node',
  // The workspace packages resolve through their `switchboard-source` export condition to their
  // TypeScript sources (transformed like ours), so a test never runs a stale dist/ build.
  testEnvironmentOptions: { customExportConditions: ['node', 'node-addons', 'switchboard-source'] },
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.(t|j|mj)s$': ['@swc/jest', { jsc: { target: 'es2022', parser: { syntax: 'typescript' } }, module: { type: 'commonjs' } }],
  },
  transformIgnorePatterns: ['/node_modules/(?!(jose|ai|@ai-sdk)/)'],
  moduleFileExtensions: ['ts', 'js', 'mjs', 'cjs', 'json'],
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
  // Each test file leaves some of its module registry behind in its worker (an app's whole module
  // graph): a worker whose heap has grown past this is replaced after its file, before its garbage
  // collection costs more than a fresh worker's start.
  workerIdleMemoryLimit: '700MB',
  // Also the default for hooks: an app's start (PGlite, Redis, sockets) on two cores shared with
  // other busy processes can take well over ten seconds; a test that hangs still fails.
  testTimeout: 60_000,
  // Jest's order, with the files whose size understates their time first in a run without timings.
  testSequencer: '<rootDir>/test/support/test-sequencer.cjs',
};

export default config;
