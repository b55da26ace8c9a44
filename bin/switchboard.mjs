#!/usr/bin/env node
// The `switchboard` command. It runs in this very process (no launcher child), so signals reach
// Switchboard directly. It runs the esbuild bundle of src/ that `npm start` runs (scripts/bundle.cjs,
// rebuilt first when a source is newer): half the start-up CPU of compiling the TypeScript sources.
// Where the bundle cannot be written (an install the user may not write to), tsx's loader is
// registered here and the TypeScript CLI is imported instead.
import { createRequire, enableCompileCache } from 'node:module';

const require = createRequire(import.meta.url);
// First, before anything that needs a newer Node: a too-old Node says so in one line.
require('./node-version.cjs').checkNodeVersion();

let bundle;
try {
  bundle = await require('../scripts/bundle.cjs').ensureBundle({ quiet: true, packages: false });
} catch {
  bundle = undefined;
}
let cli;
if (bundle) {
  // V8's compiled code of the bundle and its packages, kept beside it between starts (as npm start does).
  enableCompileCache?.(new URL('../.build/compile-cache', import.meta.url).pathname);
  cli = require(bundle);
} else {
  await import('tsx');
  // src/cli.ts loads as CommonJS (the package has no "type"), so its exports arrive on `default`.
  const module = await import('../src/cli.ts');
  cli = module.main ? module : module.default;
}
cli.main(process.argv.slice(2));
