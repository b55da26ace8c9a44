/** @jest-config-loader esbuild-register */
import type { Config } from 'jest';

/**
 * Tests run TypeScript through @swc/jest (no type checking; `npm run typecheck` does that).
 * jose is published as ESM only, so it is transformed to CommonJS like our own sources.
 */
const config: Config = {
  testEnvironment: 'node',
  // The workspace packages resolve through their `switchboard-source` export condition to their
  // TypeScript sources (transformed like ours), so a test never runs a stale dist/ build.
  testEnvironmentOptions: { customExportConditions: ['node', 'node-addons', 'switchboard-source'] },
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.(t|j|mj)s$': ['@swc/jest', { jsc: { target: 'es2022', parser: { syntax: 'typescript' } }, module: { type: 'commonjs' } }],
  },
  transformIgnorePatterns: ['/node_modules/(?!(jose)/)'],
  moduleFileExtensions: ['ts', 'js', 'mjs', 'cjs', 'json'],
  maxWorkers: 2,
  // Also the default for hooks: an app's start (PGlite, Redis, sockets) on two cores shared with
  // other busy processes can take well over ten seconds; a test that hangs still fails.
  testTimeout: 60_000,
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  globalTeardown: '<rootDir>/test/support/global-teardown.ts',
};

export default config;
