/**
 * snake_case ⇄ camelCase for the keys of JSON values at the compatibility edge: clients written for
 * snake_case APIs send `device_id` and read `items_processed`, the services speak `deviceId` and
 * `itemsProcessed`. Only keys change; values (strings, numbers, ids) never do.
 *
 * Some fields hold the user's own data, whose keys are not ours to rename: an app's `context`, a
 * flow's `input` and `output`, a tool call's `parameters`, a block's `content`, a JSON Schema. Their
 * values pass through whole (`OPAQUE_KEYS`, matched in either case).
 */

/** Fields whose values are the user's data or a foreign format: passed through unchanged. */
export const OPAQUE_KEYS: ReadonlySet<string> = new Set([
  'context',
  'input',
  'output',
  'parameters',
  'arguments',
  'content',
  'configSchema',
  'metadata',
  'definition',
  'inputSchema',
  'outputSchema',
  'result',
]);

/** `items_processed` → `itemsProcessed`; a key without an underscore between letters or digits is returned as it is. */
export function camelKey(key: string): string {
  return key.replace(/([a-z0-9])_([a-z0-9])/g, (_match, before: string, after: string) => before + after.toUpperCase());
}

/** `itemsProcessed` → `items_processed`; `sessionID`-style runs of capitals stay together (`session_id`). */
export function snakeKey(key: string): string {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2')
    .toLowerCase();
}

/** A key written in snake_case: a lowercase word, an underscore, another lowercase word (`device_id`, `date_range`). */
export const isSnakeKey = (key: string): boolean => /^[a-z][a-z0-9]*(_[a-z0-9]+)+$/.test(key);

/** A JSON object: an object literal, or one without a prototype (how a query string is parsed). */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

const isOpaque = (key: string) => OPAQUE_KEYS.has(key) || OPAQUE_KEYS.has(camelKey(key));

/**
 * `value` with every object key renamed by `rename`, through arrays and nested objects, except
 * under `OPAQUE_KEYS`. Two keys that become one (`device_id` and `deviceId`) keep the one written
 * first and report the clash, so the caller can refuse the request instead of guessing.
 */
export function renameKeys(value: unknown, rename: (key: string) => string, clashes: string[] = [], path = ''): unknown {
  if (Array.isArray(value)) return value.map((item, index) => renameKeys(item, rename, clashes, `${path}${path ? '.' : ''}${index}`));
  if (!isPlainObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    const renamed = rename(key);
    const at = `${path}${path ? '.' : ''}${key}`;
    if (Object.hasOwn(out, renamed)) {
      clashes.push(at);
      continue;
    }
    setOwn(out, renamed, isOpaque(key) ? item : renameKeys(item, rename, clashes, at));
  }
  return out;
}

/**
 * `object[key] = value` as an own property whatever the key: assigning `__proto__` would replace
 * the object's prototype instead (a JSON body may hold that key), so its fields would be inherited,
 * unseen by the clash check and by `Object.entries`, yet read by a schema.
 */
export function setOwn(object: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
}

/** Every key camelCase (see `renameKeys`); `clashes` lists keys written twice in two cases. */
export const toCamelKeys = (value: unknown, clashes?: string[]): unknown => renameKeys(value, camelKey, clashes);

/** Every key snake_case (see `renameKeys`). */
export const toSnakeKeys = (value: unknown): unknown => renameKeys(value, snakeKey);

/** Whether any key of `value` (outside `OPAQUE_KEYS`) is written in snake_case: the client speaks snake_case. */
export function usesSnakeCase(value: unknown): boolean {
  if (Array.isArray(value)) return value.some(usesSnakeCase);
  if (!isPlainObject(value)) return false;
  return Object.entries(value).some(([key, item]) => isSnakeKey(key) || (!isOpaque(key) && usesSnakeCase(item)));
}

/** A key written in camelCase: a lowercase word, then words that start with a capital (`deviceId`, `nextCursor`). */
export const isCamelKey = (key: string): boolean => /^[a-z][a-z0-9]*([A-Z][a-z0-9]*)+$/.test(key);

/** Whether any key of `value` (outside `OPAQUE_KEYS`) is written in camelCase: the client speaks camelCase. */
export function usesCamelCase(value: unknown): boolean {
  if (Array.isArray(value)) return value.some(usesCamelCase);
  if (!isPlainObject(value)) return false;
  return Object.entries(value).some(([key, item]) => isCamelKey(key) || (!isOpaque(key) && usesCamelCase(item)));
}

/**
 * `value` with the snake_case twin of every camelCase key beside it (`deviceId` and `device_id`,
 * holding the same value), through arrays and nested objects except under `OPAQUE_KEYS`: one
 * answer that a camelCase client and a snake_case client both read. A twin never replaces a key
 * that is there already.
 */
export function withSnakeTwins(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withSnakeTwins);
  if (!isPlainObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) setOwn(out, key, isOpaque(key) ? item : withSnakeTwins(item));
  for (const key of Object.keys(out)) {
    const twin = snakeKey(key);
    if (twin !== key && !Object.hasOwn(out, twin)) setOwn(out, twin, out[key]);
  }
  return out;
}
