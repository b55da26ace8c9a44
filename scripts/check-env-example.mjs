#!/usr/bin/env node
// Checks that .env.example lists every environment variable Switchboard reads: the keys of the
// zod schema in config/env.ts and every direct process.env read in src/, config/ and scripts/.
// A variable may be listed set (`NAME=value`) or commented out (`# NAME=value`), and must have a
// comment line above it. Exits 1 naming what is missing.
// Usage: node scripts/check-env-example.mjs
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const read = (path) => readFileSync(join(root, path), 'utf8');

const schema = read('config/env.ts');
const names = new Set([...schema.matchAll(/^ {2}([A-Z][A-Z0-9_]+):/gm)].map((m) => m[1]));
const walk = (dir) => {
  for (const name of readdirSync(join(root, dir))) {
    const rel = join(dir, name);
    if (name === 'node_modules') continue;
    if (statSync(join(root, rel)).isDirectory()) walk(rel);
    else if (/\.(ts|js|cjs|mjs)$/.test(name)) {
      for (const m of read(rel).matchAll(/process\.env(?:\.([A-Z][A-Z0-9_]+)|\[['"]([A-Z][A-Z0-9_]+)['"]\])/g)) names.add(m[1] ?? m[2]);
    }
  }
};
for (const dir of ['src', 'config', 'scripts']) walk(dir);
// Set by the tooling or the system, not by an operator.
for (const name of ['NODE_OPTIONS', 'NODE_V8_COVERAGE', 'JEST_WORKER_ID', 'PATH']) names.delete(name);

const lines = read('.env.example').split('\n');
const listed = new Map();
lines.forEach((line, i) => {
  const m = /^(?:# ?)?([A-Z][A-Z0-9_]+)=/.exec(line);
  if (m) listed.set(m[1], i);
});
const problems = [];
for (const name of [...names].sort()) {
  if (!listed.has(name)) problems.push(`${name}: not in .env.example`);
}
for (const [name, i] of listed) {
  let j = i - 1;
  while (j >= 0 && /^(?:# ?)?[A-Z][A-Z0-9_]+=/.test(lines[j])) j -= 1; // a group shares its comment
  if (j < 0 || !lines[j].startsWith('#')) problems.push(`${name}: no comment above it`);
}
if (problems.length > 0) {
  console.error(`.env.example is out of date:\n${problems.join('\n')}`);
  process.exit(1);
}
console.log(`.env.example: ${names.size} variables read, every one listed with a comment`);
