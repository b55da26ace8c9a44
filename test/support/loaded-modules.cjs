/**
 * Preloaded with `NODE_OPTIONS=--require <this file>` in a process under test: on exit, writes to
 * `LOADED_MODULES_FILE` every module the process loaded, through `require` or `import` (Node's
 * module hooks see both), so a test can assert what a process never loaded.
 */
'use strict';
const fs = require('node:fs');
const { registerHooks } = require('node:module');

const loaded = new Set();
// Node 22.15 and later; on older releases only what `require` loaded is seen (the test that reads
// this also asserts that the SDK shows up when tracing is on, so a blind spot fails it).
registerHooks?.({
  load(url, context, nextLoad) {
    loaded.add(url);
    return nextLoad(url, context);
  },
});
process.on('exit', () => {
  for (const file of Object.keys(require.cache)) loaded.add(file);
  fs.writeFileSync(process.env.LOADED_MODULES_FILE, JSON.stringify([...loaded]));
});
