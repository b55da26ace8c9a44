/**
 * `npm start`: runs Switchboard from the esbuild bundle of src/ (scripts/bundle.cjs), rebuilt first
 * when a source is newer. Compiling the TypeScript tree through tsx's loader instead costs about
 * twice the CPU of a start (the transform, its loader thread's round trips, source maps).
 */
'use strict';
// First: a too-old Node says so in one line.
require('../bin/node-version.cjs').checkNodeVersion();
const path = require('node:path');

// V8's compiled code of the bundle and of every package it loads, kept on disk between starts: a
// warm start then skips compiling ~0.3 s of JavaScript. Node checks each entry against its source,
// so an edited file is compiled afresh. The CLI flushes it once Switchboard is ready.
require('node:module').enableCompileCache?.(path.resolve(__dirname, '../.build/compile-cache'));

// The bundle carries an inline source map: NODE_OPTIONS=--enable-source-maps makes stack traces name
// the .ts files. It is off by default because Node then parses every package's map too (~0.2 s).
require('./bundle.cjs')
  .ensureBundle()
  .then(
    // What src/main.ts does: the command line's `start`, with npm start's flags.
    (bundle) => require(bundle).main(['start', ...process.argv.slice(2)]),
    (error) => {
      process.stderr.write(`\nSwitchboard could not be built: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(1);
    },
  );
