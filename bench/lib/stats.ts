/** Summary statistics for benchmark samples (milliseconds unless said otherwise). */

/** The p-th percentile (0-100) by linear interpolation between closest ranks; NaN for no samples. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const position = ((sorted.length - 1) * Math.min(Math.max(p, 0), 100)) / 100;
  const lower = Math.floor(position);
  const upper = Math.ceil(position);
  return sorted[lower] + (sorted[upper] - sorted[lower]) * (position - lower);
}

export const median = (samples: readonly number[]) => percentile(samples, 50);

export function mean(samples: readonly number[]): number {
  return samples.length ? samples.reduce((sum, value) => sum + value, 0) / samples.length : Number.NaN;
}

/** p50 / p90 / p99 / min / max / n of a sample set, rounded for the report. */
export function summarize(samples: readonly number[], digits = 2) {
  return {
    n: samples.length,
    p50: round(percentile(samples, 50), digits),
    p90: round(percentile(samples, 90), digits),
    p95: round(percentile(samples, 95), digits),
    p99: round(percentile(samples, 99), digits),
    min: round(Math.min(...samples), digits),
    max: round(Math.max(...samples), digits),
  };
}

/** Least-squares slope of y over x (used for bytes per socket over several fleet sizes). */
export function slope(points: ReadonlyArray<readonly [number, number]>): number {
  const n = points.length;
  if (n < 2) return Number.NaN;
  const mx = mean(points.map(([x]) => x));
  const my = mean(points.map(([, y]) => y));
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? Number.NaN : num / den;
}

export function round(value: number, digits = 2): number {
  if (!Number.isFinite(value)) return value;
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}
