'use strict';
/**
 * The Node.js version check every entry point runs first (bin/switchboard.mjs, scripts/start.cjs,
 * src/cli.ts): older versions lack what Switchboard uses, and would fail later with an error that
 * does not say why. Plain CommonJS, so it loads on any Node version.
 */
const MINIMUM = [22, 12];

/** The line to print when `version` (e.g. `20.11.1`) is older than the minimum, else null. */
function nodeTooOld(version) {
  const [major, minor] = String(version).split('.').map(Number);
  if (major > MINIMUM[0] || (major === MINIMUM[0] && minor >= MINIMUM[1])) return null;
  return `switchboard: Node.js ${MINIMUM.join('.')} or newer is required (this is ${version}); install Node 22 or 24 LTS (nvm install 24) and start again`;
}

/** Prints the line and exits 1 when this Node is too old. */
function checkNodeVersion() {
  const problem = nodeTooOld(process.versions.node);
  if (!problem) return;
  process.stderr.write(`${problem}\n`);
  process.exit(1);
}

module.exports = { nodeTooOld, checkNodeVersion };
