/**
 * The median of several full benchmark runs, target by target: one run on a shared VM moves by more
 * than some targets' margins, so the verdicts worth quoting are those of the median of three. Reads
 * the results files (`bench/results/<date>.json`, each a full run) and prints each target's value
 * per run, their median, and the verdict of the median; each run's machine load at its start too.
 *
 *   node -r ./bench/register.cjs bench/tools/median-of-runs.ts <run1.json> <run2.json> <run3.json>
 */
import { readFileSync } from 'node:fs';
import { judge, table, type Target } from '../lib/report';
import { median } from '../lib/stats';

interface RunFile {
  startedAt: string;
  mode?: string;
  topology?: string;
  machine: { node: string; loadAvgAtStart: number[] };
  targets: Target[];
}

const files = process.argv.slice(2);
if (files.length < 2) throw new Error('usage: median-of-runs <run1.json> <run2.json> [...]');
const runs = files.map((file) => JSON.parse(readFileSync(file, 'utf8')) as RunFile);
for (const [i, run] of runs.entries()) {
  if (run.mode !== undefined && run.mode !== 'full') throw new Error(`${files[i]} is a ${run.mode} run, not a full one`);
  if (run.topology !== runs[0].topology) throw new Error(`${files[i]} ran on ${run.topology}, ${files[0]} on ${runs[0].topology}`);
}

console.log(`${runs.length} runs on ${runs[0].topology ?? 'single'} Redis, ${runs[0].machine.node}`);
for (const [i, run] of runs.entries())
  console.log(`  run ${i + 1}: ${run.startedAt}, load average (1 / 5 / 15 min) at start ${run.machine.loadAvgAtStart.join(' / ')}`);

const medians = judge(
  runs[0].targets.map((target) => {
    const values = runs.map((run) => run.targets.find((t) => t.name === target.name)?.value).filter((v): v is number => v !== undefined);
    return { ...target, value: values.length === runs.length ? median(values) : undefined };
  }),
);
const rows = medians.map((target) => [
  target.name,
  ...runs.map((run) => run.targets.find((t) => t.name === target.name)?.value),
  target.value,
  `${target.direction === 'max' ? '≤' : '≥'} ${target.limit} ${target.unit}`.trim(),
  target.verdict,
]);
console.log(`\n${table(['target', ...runs.map((_, i) => `run ${i + 1}`), 'median', 'limit', 'verdict of the median'], rows)}`);
const missed = medians.filter((target) => target.verdict === 'MISS');
console.log(
  missed.length ? `\nmissed at the median: ${missed.map((target) => target.name).join('; ')}` : '\nevery target holds at the median',
);
