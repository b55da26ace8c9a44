import type { DeviceRow } from '../schemas/device-protocol';

/**
 * Readable text from the device's rows (Step B.2): the model reasons over these lines,
 * so each one carries what a question may need (status, priority, dates) and the id a follow-up
 * call needs. Every failure starts with "Error:", the convention the model (and the demo model)
 * read as a failed tool.
 */

/** A problem with the tool's arguments, told to the model as an error result. */
export class ToolInputError extends Error {}

const day = (ms: unknown) => (typeof ms === 'number' ? new Date(ms).toISOString().slice(0, 10) : undefined);
const str = (value: unknown) => (typeof value === 'string' && value ? value : undefined);

/** `(a: 1, b: 2)`, skipping empty parts. */
const details = (parts: Array<[string, unknown]>) => {
  const shown = parts
    .filter(([, value]) => value !== undefined && value !== null && value !== '')
    .map(([key, value]) => `${key}: ${String(value)}`);
  return shown.length ? ` (${shown.join(', ')})` : '';
};

/**
 * What a row an agent run inserted says about itself: its text came from a mail or a file, not from
 * the user, so the model reads it as a suggestion until a person approves it.
 */
export const SUGGESTED_MARK = ' (suggested by an agent, not approved)';
const suggested = (row: DeviceRow) => (row.isAiSuggested === 1 && row.isApproved !== 1 ? SUGGESTED_MARK : '');

export const describeTask = (row: DeviceRow) =>
  `${String(row.title)}${suggested(row)}${details([
    ['status', row.status],
    ['priority', row.priority],
    ['due', day(row.dueDate)],
    ['project', row.projectId],
    ['id', row.id],
  ])}`;
export const describeProject = (row: DeviceRow) =>
  `${String(row.name)}${suggested(row)}${details([
    ['status', row.status],
    ['client', row.clientId],
    ['id', row.id],
  ])}`;
export const describeCheckpoint = (row: DeviceRow) =>
  `${String(row.title)}${suggested(row)}${details([
    ['date', day(row.date)],
    ['project', row.projectId],
    ['approved', row.isApproved === 0 && row.isAiSuggested !== 1 ? 'no' : undefined],
    ['id', row.id],
  ])}`;
export const describeNote = (row: DeviceRow) =>
  `${String(row.title)}${suggested(row)}${details([
    ['project', row.projectId],
    ['id', row.id],
  ])}`;
export const describeComment = (row: DeviceRow) => `${str(row.author) ?? 'someone'}: ${String(row.content)}${details([['id', row.id]])}`;

/** "Found 3 task(s):\n- …" or "No tasks found …". */
export function listText(rows: Array<Record<string, unknown>>, noun: string, describe: (row: DeviceRow) => string, empty?: string): string {
  if (!rows.length) return empty ?? `No ${noun}s found matching the given filters.`;
  return `Found ${rows.length} ${noun}(s):\n${rows.map((row) => `- ${describe(row as DeviceRow)}`).join('\n')}`;
}

/** Drops undefined values, so optional arguments the model left out are not sent as changes. */
export function defined(record: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined));
}

/** Changes for an `update`, or a ToolInputError when the model asked to change nothing. */
export function changes(record: Record<string, unknown>, what: string): Record<string, unknown> {
  const updates = defined(record);
  if (!Object.keys(updates).length) throw new ToolInputError(`no fields to update on the ${what}; pass at least one field to change`);
  return updates;
}

/** A date argument (`2026-03-01`, an ISO timestamp, or epoch ms) as epoch ms; null clears it. */
export function toEpochMs(value: string | number | null | undefined, field: string): number | null | undefined {
  if (value === undefined || value === null) return value;
  if (typeof value === 'number') return Math.trunc(value);
  const ms = /^\d{9,}$/.test(value.trim()) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(ms) || ms < 0) throw new ToolInputError(`${field} must be a date like 2026-03-01 (got "${value}")`);
  return ms;
}

/** 0/1 flags of the device's SQLite schema. */
export const flag = (value: boolean | undefined) => (value === undefined ? undefined : value ? 1 : 0);

/** Start and end (inclusive) of today, UTC, in epoch ms. */
export function todayRange(now = Date.now()): { from: number; to: number } {
  const start = new Date(now);
  start.setUTCHours(0, 0, 0, 0);
  return { from: start.getTime(), to: start.getTime() + 24 * 3_600_000 - 1 };
}
