import { z } from 'zod';
import { AppError } from './errors';
import { isStorableText } from './text-safety';

/** Largest page any list answers. */
export const MAX_PAGE_SIZE = 200;

/**
 * `?limit` (1–200, default `defaultLimit`) and `?cursor` (opaque, from the previous page's
 * `nextCursor`): the query of every paginated list.
 */
export const pageQuerySchema = (defaultLimit: number) =>
  z.strictObject({
    limit: z.coerce.number().int().min(1).max(MAX_PAGE_SIZE).default(defaultLimit),
    cursor: z.string().min(1).max(500).optional(),
  });

/** Longest cursor read; every cursor this API writes is far shorter. */
const MAX_CURSOR_LENGTH = 500;
/** The alphabet of base64url, which every cursor is written in (no padding). */
const CURSOR_TEXT = /^[A-Za-z0-9_-]+$/;
/** PostgreSQL's `integer` and `bigint` ranges: a key past them would fail in the query (a 500). */
export const PG_INTEGER_MAX = 2_147_483_647;
const PG_BIGINT_MAX = 9_223_372_036_854_775_807n;

const invalidCursor = () => new AppError(400, 'invalid_cursor', 'The cursor is not one this API returned');

/** An opaque cursor over a row's sort key (e.g. `[createdAt, id]`). */
export function encodeCursor(key: Array<string | number>): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

/**
 * The sort key inside a cursor this API returned; `accept` checks its shape — the number of parts
 * and each part's type and range, so that every key it answers can be bound in a query — and
 * answers the typed key, or null. Anything else (too long, not base64url, not a JSON array, a key
 * `accept` refuses) is 400 `invalid_cursor`.
 */
export function decodeCursor<K>(cursor: string, accept: (key: unknown[]) => K | null): K {
  if (cursor.length > MAX_CURSOR_LENGTH || !CURSOR_TEXT.test(cursor)) throw invalidCursor();
  let key: unknown;
  try {
    key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalidCursor();
  }
  const accepted = Array.isArray(key) ? accept(key) : null;
  if (accepted === null) throw invalidCursor();
  return accepted;
}

/** `rows` fetched with `limit + 1`: the page and the cursor of its last row when more follow. */
export function pageOf<R>(rows: R[], limit: number, keyOf: (row: R) => Array<string | number>): { items: R[]; nextCursor: string | null } {
  const items = rows.slice(0, limit);
  return { items, nextCursor: rows.length > limit ? encodeCursor(keyOf(items[items.length - 1])) : null };
}

const uuid = z.uuid();
/** A `[uuid]` key (lists ordered by id), or null: only a real uuid reaches the database. */
export function idKey(key: unknown[]): string | null {
  return key.length === 1 && typeof key[0] === 'string' && uuid.safeParse(key[0]).success ? key[0] : null;
}

/** A `[rank, uuid]` key (blocks in rank order), or null; the rank must be text PostgreSQL can store. */
export function rankIdKey(key: unknown[]): { rank: string; id: string } | null {
  const [rank, id] = key;
  return key.length === 2 &&
    typeof rank === 'string' &&
    rank.length <= 200 &&
    isStorableText(rank) &&
    typeof id === 'string' &&
    uuid.safeParse(id).success
    ? { rank, id }
    : null;
}
/** An instant as `Date#toISOString` writes it for years 0001–9999 (all PostgreSQL's timestamptz reads). */
const ISO_INSTANT = /^(\d{4})-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** A `[timestamp, uuid]` key (time-ordered lists), or null: the timestamp exactly as the API writes it. */
export function timeIdKey(key: unknown[]): { at: Date; id: string } | null {
  const [at, id] = key;
  if (key.length !== 2 || typeof at !== 'string' || typeof id !== 'string' || !uuid.safeParse(id).success) return null;
  const year = ISO_INSTANT.exec(at)?.[1];
  if (!year || Number(year) < 1) return null;
  const date = new Date(at);
  // Round trip: a calendar date that does not exist (02-30) or a field out of range is refused.
  return !Number.isNaN(date.getTime()) && date.toISOString() === at ? { at: date, id } : null;
}

/** A `[n]` key of a positive whole number up to `max` (a sequence or version column's range), or null. */
export const positiveIntKey =
  (max: number) =>
  (key: unknown[]): number | null =>
    key.length === 1 && Number.isSafeInteger(key[0]) && (key[0] as number) >= 1 && (key[0] as number) <= max ? (key[0] as number) : null;

/** Whether `value` is a non-negative whole number in decimal within PostgreSQL's `bigint`. */
export function isBigintText(value: unknown): value is string {
  return typeof value === 'string' && /^\d{1,19}$/.test(value) && BigInt(value) <= PG_BIGINT_MAX;
}
