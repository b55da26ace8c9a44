import { MAX_JSON_DEPTH } from './json-depth';

/**
 * Text PostgreSQL can store: `text` and `jsonb` refuse U+0000, and `jsonb`
 * refuses lone UTF-16 surrogates ("\ud800"), which JSON can carry. A client's request holding either
 * is refused (400, an error ack); what a device or a provider sends is cleaned before it is stored,
 * because refusing it would only lose the user's own data (or leave a run `running` forever).
 */

/** A UTF-16 surrogate without its other half (matched per code unit: no `u` flag on purpose). */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const LONE_SURROGATES = new RegExp(LONE_SURROGATE.source, 'g');

/** Whether `text` is well-formed Unicode without NUL. */
export function isStorableText(text: string): boolean {
  return !text.includes('\u0000') && !LONE_SURROGATE.test(text);
}

/** `text` with NUL removed and lone surrogates replaced by U+FFFD. */
export function toStorableText(text: string): string {
  return isStorableText(text) ? text : text.replace(LONE_SURROGATES, '\uFFFD').replaceAll('\u0000', '');
}

/**
 * The path (`a.b[2]`) of the first string — value or key — in `value` that is not storable, or
 * null. Walks at most MAX_JSON_DEPTH levels: deeper input is refused where it is parsed.
 */
export function findUnstorableText(value: unknown, path = '', depth = 0): string | null {
  if (typeof value === 'string') return isStorableText(value) ? null : path || '(value)';
  if (depth > MAX_JSON_DEPTH || value === null || typeof value !== 'object') return null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i += 1) {
      const found = findUnstorableText(value[i], `${path}[${i}]`, depth + 1);
      if (found) return found;
    }
    return null;
  }
  for (const [key, item] of Object.entries(value)) {
    const here = path ? `${path}.${key}` : key;
    if (!isStorableText(key)) return here;
    const found = findUnstorableText(item, here, depth + 1);
    if (found) return found;
  }
  return null;
}

/** A copy of `value` whose every string (values and keys) is storable; other values are kept as they are. */
export function toStorable<T>(value: T, depth = 0): T {
  if (typeof value === 'string') return toStorableText(value) as T;
  if (depth > MAX_JSON_DEPTH || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return (value as unknown[]).map((item) => toStorable(item, depth + 1)) as T;
  if (Object.getPrototypeOf(value) !== Object.prototype && Object.getPrototypeOf(value) !== null) return value;
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) out[toStorableText(key)] = toStorable(item, depth + 1);
  return out as T;
}

/**
 * Cleans text that arrives in pieces (a model's deltas): a high surrogate at the end of a piece is
 * held back until the next piece, so a pair split across two deltas survives, while a lone one
 * becomes U+FFFD.
 */
export class StorableTextStream {
  private held = '';

  /** The storable part of `piece` (with what was held before it). */
  push(piece: string): string {
    let text = this.held + piece;
    this.held = '';
    const last = text.charCodeAt(text.length - 1);
    if (last >= 0xd800 && last <= 0xdbff) {
      this.held = text.slice(-1);
      text = text.slice(0, -1);
    }
    return toStorableText(text);
  }

  /** Whatever was held, cleaned (call once the stream ends). */
  end(): string {
    const rest = toStorableText(this.held);
    this.held = '';
    return rest;
  }
}
