import { ConnectorError, type FilterConfig } from './types';

const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;

function parseBound(value: string, edge: 'from' | 'to'): Date {
  if (DATE_ONLY.test(value)) {
    const start = new Date(`${value}T00:00:00.000Z`);
    // A bare `to` date means "through the end of that day".
    return edge === 'to' ? new Date(start.getTime() + 86_400_000) : start;
  }
  const at = new Date(value);
  if (Number.isNaN(at.getTime()))
    throw new ConnectorError(`filterConfig.dateRange.${edge} is not a date: ${JSON.stringify(value).slice(0, 40)}`, 400, false);
  return at;
}

/**
 * The time window to read: items at or after `after` (the later of `since` and dateRange.from)
 * and before `before` (dateRange.to, exclusive).
 */
export function timeWindow(filter: FilterConfig, since?: Date): { after?: Date; before?: Date } {
  const from = filter.dateRange?.from ? parseBound(filter.dateRange.from, 'from') : undefined;
  const before = filter.dateRange?.to ? parseBound(filter.dateRange.to, 'to') : undefined;
  const candidates = [from, since].filter((date): date is Date => date !== undefined);
  const after = candidates.length ? new Date(Math.max(...candidates.map((date) => date.getTime()))) : undefined;
  return { after, before };
}

/** True when `date` lies in the window. */
export function inWindow(date: Date, window: { after?: Date; before?: Date }): boolean {
  if (window.after && date.getTime() < window.after.getTime()) return false;
  if (window.before && date.getTime() >= window.before.getTime()) return false;
  return true;
}

/** Non-empty, trimmed entries of an optional list. */
export function cleanList(values: string[] | undefined): string[] {
  return (values ?? []).map((value) => value.trim()).filter(Boolean);
}

/**
 * Errors that end the whole fetch rather than one item: reconnect, rate limits, aborts, and a
 * provider that cannot be reached at all. A status the provider answered for one item stays with it.
 */
export function endsFetch(error: unknown): boolean {
  return !(error instanceof ConnectorError && error.status !== undefined);
}
