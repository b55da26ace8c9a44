/**
 * Compiles the benchmark's TypeScript on the fly as `npm start` compiles Switchboard
 * (scripts/start.cjs: esbuild, this Node's target, no `keepNames`), so the Switchboard it runs in
 * process is the code users run. tsx forces esbuild's `keepNames`, which wraps every function
 * expression in `__name(fn, "…")`: a `defineProperty` each time a closure is created and a 256-byte
 * property store on every closure; production never pays either. Dynamic
 * `import()`s become `require`s, as bundling makes them.
 */
const fs = require('node:fs');
const path = require('node:path');

// This checkout's packages/, and the one node_modules' links reach when node_modules is shared with another checkout.
const packageDirs = [
  ...new Set([
    path.join(__dirname, '..', 'packages'),
    path.join(fs.realpathSync(path.join(__dirname, '..', 'node_modules')), '..', 'packages'),
  ]),
].map((dir) => dir + path.sep);

require('esbuild-register/dist/node.js').register({
  target: `node${process.versions.node.split('.')[0]}`,
  supported: { 'dynamic-import': false },
  // The workspace packages' builds (packages/*/dist, reached through node_modules/@switchboard links
  // whose real path is outside node_modules) are ES modules that Node loads itself.
  hookMatcher: (file) => !packageDirs.some((dir) => file.startsWith(dir)),
});
