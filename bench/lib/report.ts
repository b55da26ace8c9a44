/** The benchmark's targets and the printed table. */

export interface Target {
  name: string;
  /** Path of the value in the results, for the reader. */
  metric: string;
  value: number | undefined;
  limit: number;
  direction: 'max' | 'min';
  unit: string;
}

export type Verdict = Target & { verdict: 'PASS' | 'MISS' | 'N/A' };

export function judge(targets: Target[]): Verdict[] {
  return targets.map((target) => {
    if (target.value === undefined || !Number.isFinite(target.value)) return { ...target, verdict: 'N/A' as const };
    const ok = target.direction === 'max' ? target.value <= target.limit : target.value >= target.limit;
    return { ...target, verdict: ok ? ('PASS' as const) : ('MISS' as const) };
  });
}

/** A plain text table with a header rule; numbers right-aligned. */
export function table(headers: string[], rows: Array<Array<string | number | undefined>>): string {
  const cells = rows.map((row) => row.map((cell) => (cell === undefined ? '—' : typeof cell === 'number' ? format(cell) : cell)));
  const widths = headers.map((header, i) => Math.max(header.length, ...cells.map((row) => (row[i] ?? '').length)));
  const line = (row: string[]) =>
    row
      .map((cell, i) => (i > 0 && /^[-\d.,]+( ?[a-zA-Z/%×]*)?$/.test(cell) ? cell.padStart(widths[i]) : cell.padEnd(widths[i])))
      .join('  ');
  return [line(headers), widths.map((w) => '─'.repeat(w)).join('  '), ...cells.map(line)].join('\n');
}

export function format(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (Math.abs(value) >= 100_000) return Math.round(value).toLocaleString('en-US');
  if (Math.abs(value) >= 100) return value.toFixed(0);
  if (Math.abs(value) >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

/** One target against the same target of an earlier run: `worseBy` is the share it lost (0.1 = 10 % worse; negative = better). */
export interface Regression {
  name: string;
  metric: string;
  unit: string;
  previous: number;
  value: number;
  worseBy: number;
  regressed: boolean;
}

/** How much worse a target may get before it is called a regression. */
export const REGRESSION_THRESHOLD = 0.1;

/**
 * Each target measured now against its value in an earlier run's results (their `targets`), matched
 * by name: the share it got worse in its own direction (a `max` target growing, a `min` target
 * shrinking). A value of 0 before is compared in absolute terms (any growth of a `max` target that
 * was 0 is a regression). Targets missing on either side are left out.
 */
export function regressions(now: Target[], before: Target[]): Regression[] {
  const earlier = new Map(before.map((target) => [target.name, target.value]));
  return now.flatMap((target) => {
    const previous = earlier.get(target.name);
    const value = target.value;
    if (previous === undefined || value === undefined || !Number.isFinite(previous) || !Number.isFinite(value)) return [];
    const change = target.direction === 'max' ? value - previous : previous - value;
    const worseBy = previous === 0 ? (change > 0 ? Infinity : 0) : change / Math.abs(previous);
    return [
      { name: target.name, metric: target.metric, unit: target.unit, previous, value, worseBy, regressed: worseBy >= REGRESSION_THRESHOLD },
    ];
  });
}
