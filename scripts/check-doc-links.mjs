#!/usr/bin/env node
// Checks that every relative link in README.md and docs/**/*.md resolves: the file or folder
// exists, and a #fragment names a heading of the target Markdown file (GitHub's slug rules).
// Links inside fenced code blocks and inline code are ignored. Exits 1 listing every broken link.
// Usage: node scripts/check-doc-links.mjs
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const files = ['README.md'];
const walk = (dir) => {
  for (const name of readdirSync(join(root, dir))) {
    const rel = join(dir, name);
    if (statSync(join(root, rel)).isDirectory()) walk(rel);
    else if (name.endsWith('.md')) files.push(rel);
  }
};
walk('docs');

const stripCode = (text) => text.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '').replace(/`[^`\n]*`/g, '');
const slug = (heading) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
const anchorsOf = new Map();
const anchors = (file) => {
  if (!anchorsOf.has(file)) {
    const seen = new Map();
    const set = new Set();
    const text = readFileSync(file, 'utf8').replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '');
    for (const m of text.matchAll(/^#{1,6}\s+(.+?)\s*#*$/gm)) {
      const base = slug(m[1]);
      const n = seen.get(base) ?? 0;
      seen.set(base, n + 1);
      set.add(n === 0 ? base : `${base}-${n}`);
    }
    for (const m of text.matchAll(/<a\s+(?:name|id)="([^"]+)"/g)) set.add(m[1]);
    anchorsOf.set(file, set);
  }
  return anchorsOf.get(file);
};

const broken = [];
for (const file of files) {
  const abs = join(root, file);
  const text = stripCode(readFileSync(abs, 'utf8'));
  for (const m of text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
    const link = m[1];
    if (/^[a-z][a-z0-9+.-]*:/i.test(link)) continue; // http:, https:, mailto:
    const [path, fragment] = link.split('#');
    const target = path === '' ? abs : resolve(dirname(abs), decodeURIComponent(path));
    if (!existsSync(target)) {
      broken.push(`${file}: ${link} (no such file)`);
      continue;
    }
    if (fragment && target.endsWith('.md') && !anchors(target).has(fragment.toLowerCase())) {
      broken.push(`${file}: ${link} (no heading #${fragment})`);
    }
  }
}
if (broken.length > 0) {
  console.error(`${broken.length} broken link(s):\n${broken.join('\n')}`);
  process.exit(1);
}
console.log(`doc links: ${files.length} files checked, every relative link resolves`);
