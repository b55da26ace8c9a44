/**
 * JSON-Schema keywords whose value is a regular expression. They are refused: a
 * user's pattern would run in the backtracking engine of the worker's thread against a model's
 * answer (or a person's form answer), and one pattern can stall every job of that process for seconds.
 */
export const REGEX_KEYWORDS = ['pattern', 'patternProperties'] as const;
/** Keywords whose value maps names (not keywords) to schemas. */
const SCHEMA_MAPS = new Set(['properties', '$defs', 'definitions', 'dependentSchemas']);

/**
 * The path of the first regular-expression keyword ({@link REGEX_KEYWORDS}) in a JSON Schema, or
 * null. Names under `properties` and the like are names, so a property called `pattern` is fine.
 */
export function regexKeyword(schema: unknown, path: PropertyKey[] = []): PropertyKey[] | null {
  if (schema === null || typeof schema !== 'object') return null;
  if (Array.isArray(schema)) {
    for (const [index, item] of schema.entries()) {
      const found = regexKeyword(item, [...path, index]);
      if (found) return found;
    }
    return null;
  }
  for (const [key, value] of Object.entries(schema)) {
    if ((REGEX_KEYWORDS as readonly string[]).includes(key)) return [...path, key];
    if (SCHEMA_MAPS.has(key) && value !== null && typeof value === 'object' && !Array.isArray(value)) {
      for (const [name, sub] of Object.entries(value as Record<string, unknown>)) {
        const found = regexKeyword(sub, [...path, key, name]);
        if (found) return found;
      }
      continue;
    }
    const found = regexKeyword(value, [...path, key]);
    if (found) return found;
  }
  return null;
}
