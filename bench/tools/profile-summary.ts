/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof`): self time by package or source folder, the
 * top functions by self time, and inclusive time of the functions matching --focus.
 *
 *   node -r ./bench/register.cjs bench/tools/profile-summary.ts <file.cpuprofile> [--top=25] [--focus=regex]
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const [file, ...flags] = process.argv.slice(2);
if (!file) throw new Error('usage: profile-summary <file.cpuprofile> [--top=N] [--focus=regex]');
const top = Number(flags.find((f) => f.startsWith('--top='))?.slice(6) ?? 25);
const focus = flags.find((f) => f.startsWith('--focus='))?.slice(8);
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;

const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const parent = new Map<number, number>();
for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
const selfUs = new Map<number, number>();
profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
const totalUs = [...selfUs.values()].reduce((a, b) => a + b, 0);

/** `node_modules/@scope/pkg`, `src/folder`, `node:internal`, or a special V8 frame name. */
function area(node: ProfileNode): string {
  const { url, functionName } = node.callFrame;
  if (!url) return `(${functionName || 'anonymous'})`;
  const modules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (modules) return modules[1];
  const own = /\/work\/main\/((?:src|bench|config|test)\/[^/]+)/.exec(url) ?? /\/((?:src|bench|config|test)\/[^/]+)/.exec(url);
  if (own) return own[1];
  if (url.startsWith('node:')) return url.split('/')[0].replace(/^node:internal.*/, 'node:internal');
  return url.replace(/^file:\/\//, '');
}

const label = (node: ProfileNode) =>
  `${node.callFrame.functionName || '(anonymous)'} ${node.callFrame.url.replace(/^.*\/(node_modules|work\/main)\//, '')}:${node.callFrame.lineNumber + 1}`;
const ms = (us: number) => (us / 1000).toFixed(1).padStart(8);
const pct = (us: number) => `${((100 * us) / totalUs).toFixed(1).padStart(5)}%`;

const areas = new Map<string, number>();
const functions = new Map<string, number>();
for (const [id, us] of selfUs) {
  const node = byId.get(id)!;
  areas.set(area(node), (areas.get(area(node)) ?? 0) + us);
  functions.set(label(node), (functions.get(label(node)) ?? 0) + us);
}
const print = (title: string, entries: Map<string, number>, limit: number) => {
  console.log(`\n${title}`);
  for (const [name, us] of [...entries].sort((a, b) => b[1] - a[1]).slice(0, limit)) console.log(`${ms(us)} ms ${pct(us)}  ${name}`);
};
console.log(`${file}: ${(totalUs / 1000).toFixed(0)} ms sampled over ${((profile.endTime - profile.startTime) / 1000).toFixed(0)} ms`);
// A native `dispatch` frame with no script is the inspector call that stops the profiler (--profile).
if (areas.has('(dispatch)')) console.log('note: (dispatch) is mostly the Profiler.stop call that ended the profile, not Switchboard');
print('self time by package / folder', areas, top);
print('self time by function', functions, top);

if (focus) {
  // Inclusive time: a sample counts once for every distinct matching function on its stack.
  const pattern = new RegExp(focus);
  const inclusive = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const seen = new Set<string>();
    for (let cursor: number | undefined = id; cursor !== undefined; cursor = parent.get(cursor)) {
      const name = label(byId.get(cursor)!);
      if (pattern.test(name) && !seen.has(name)) {
        seen.add(name);
        inclusive.set(name, (inclusive.get(name) ?? 0) + us);
      }
    }
  }
  print(`inclusive time of functions matching /${focus}/`, inclusive, top);
}
