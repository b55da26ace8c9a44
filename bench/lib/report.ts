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
