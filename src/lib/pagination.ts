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

/** An opaque cursor over a row's sort key (e.g. `[createdAt, id]`). */
export function encodeCursor(key: Array<string | number>): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

/**
 * The sort key inside a cursor this API returned; `accept` checks its shape and answers the typed
 * key, or null. Anything else is 400 `invalid_cursor`.
 */
export function decodeCursor<K>(cursor: string, accept: (key: unknown[]) => K | null): K {
  try {
    const key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    const accepted = Array.isArray(key) ? accept(key) : null;
    if (accepted !== null) return accepted;
  } catch {
    // falls through to the 400
  }
  throw new AppError(400, 'invalid_cursor', 'The cursor is not one this API returned');
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
/** A `[timestamp, uuid]` key (time-ordered lists), or null. */
export function timeIdKey(key: unknown[]): { at: Date; id: string } | null {
  const [at, id] = key;
  if (key.length !== 2 || typeof at !== 'string' || typeof id !== 'string' || !uuid.safeParse(id).success) return null;
  const date = new Date(at);
  return Number.isNaN(date.getTime()) ? null : { at: date, id };
}
