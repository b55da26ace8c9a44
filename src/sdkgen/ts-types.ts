import { tsKey } from './naming';

export type JsonSchema = Record<string, unknown>;

/** The TypeScript type a component schema (`#/components/schemas/<name>`) is written as. */
export function componentTypeName(name: string): string {
  const base = name.replace(/[^A-Za-z0-9_$]/g, '_').replace(/^([0-9])/, '_$1');
  // Names a module-level type would shadow (the client throws `Error`s and uses `Response`).
  return GLOBAL_TYPES.has(base) ? `${base}Schema` : base;
}
const GLOBAL_TYPES = new Set([
  'Error',
  'Response',
  'Request',
  'Headers',
  'Record',
  'Partial',
  'Promise',
  'Array',
  'Object',
  'String',
  'Number',
  'Boolean',
  'Date',
  'Map',
  'Set',
]);

const literal = (value: unknown) => (value === null ? 'null' : JSON.stringify(value));

/** A JSDoc comment for a description, or nothing (a `*\/` in the text cannot end the comment). */
export function jsDoc(text: unknown, indent: string): string {
  if (typeof text !== 'string' || !text.trim()) return '';
  const lines = text.trim().replace(/\*\//g, '*\\/').split(/\r?\n/);
  return lines.length === 1
    ? `${indent}/** ${lines[0]} */\n`
    : `${indent}/**\n${lines.map((line) => `${indent} * ${line}`.trimEnd()).join('\n')}\n${indent} */\n`;
}

/**
 * Renders a JSON Schema (2020-12, as zod writes it) as a TypeScript type. Constraints TypeScript
 * cannot state (lengths, patterns, formats, bounds) are dropped; the server validates them and
 * answers 400 with the path of the problem. A schema with no type (`{}`) is `unknown`.
 */
export function tsType(schema: unknown, indent = ''): string {
  if (schema === true || schema === undefined) return 'unknown';
  if (schema === false) return 'never';
  if (!schema || typeof schema !== 'object') return 'unknown';
  const s = schema as JsonSchema;

  if (typeof s.$ref === 'string') {
    const match = /^#\/components\/schemas\/(.+)$/.exec(s.$ref);
    return match ? componentTypeName(decodeURIComponent(match[1])) : 'unknown';
  }
  if ('const' in s) return literal(s.const);
  if (Array.isArray(s.enum)) return s.enum.length ? union(s.enum.map(literal)) : 'never';
  if (Array.isArray(s.anyOf)) return union((s.anyOf as unknown[]).map((part) => wrap(tsType(part, indent))));
  if (Array.isArray(s.oneOf)) return union((s.oneOf as unknown[]).map((part) => wrap(tsType(part, indent))));
  if (Array.isArray(s.allOf)) return (s.allOf as unknown[]).map((part) => wrap(tsType(part, indent))).join(' & ') || 'unknown';

  const types = Array.isArray(s.type) ? (s.type as string[]) : typeof s.type === 'string' ? [s.type] : inferTypes(s);
  if (!types.length) return 'unknown';
  return union(types.map((type) => wrap(typeOf(type, s, indent))));
}

function inferTypes(s: JsonSchema): string[] {
  if (s.properties || s.additionalProperties !== undefined || s.propertyNames) return ['object'];
  if (s.items || s.prefixItems) return ['array'];
  return [];
}

function typeOf(type: string, s: JsonSchema, indent: string): string {
  switch (type) {
    case 'string':
      return 'string';
    case 'integer':
    case 'number':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'null':
      return 'null';
    case 'array':
      return arrayType(s, indent);
    case 'object':
      return objectType(s, indent);
    default:
      return 'unknown';
  }
}

function arrayType(s: JsonSchema, indent: string): string {
  if (Array.isArray(s.prefixItems)) {
    const items = (s.prefixItems as unknown[]).map((item) => tsType(item, indent));
    const rest = s.items === false || s.items === undefined ? [] : [`...${wrap(tsType(s.items, indent))}[]`];
    return `[${[...items, ...rest].join(', ')}]`;
  }
  return `${wrap(tsType(s.items, indent))}[]`;
}

function objectType(s: JsonSchema, indent: string): string {
  const properties = (s.properties ?? {}) as Record<string, unknown>;
  const required = new Set((s.required as string[] | undefined) ?? []);
  const extra = s.additionalProperties;
  const names = Object.keys(properties);
  const valueOfExtra = extra === false ? null : extra === undefined || extra === true ? 'unknown' : tsType(extra, indent);
  if (!names.length) {
    if (valueOfExtra === null) return 'Record<string, never>';
    const keys =
      s.propertyNames && typeof s.propertyNames === 'object' && Array.isArray((s.propertyNames as JsonSchema).enum)
        ? tsType(s.propertyNames)
        : 'string';
    return keys === 'string' ? `Record<string, ${valueOfExtra}>` : `Partial<Record<${keys}, ${valueOfExtra}>>`;
  }
  const inner = `${indent}  `;
  const lines = names.map((name) => {
    const property = properties[name] as JsonSchema | undefined;
    return `${jsDoc(property?.description, inner)}${inner}${tsKey(name)}${required.has(name) ? '' : '?'}: ${tsType(property, inner)};`;
  });
  // Declared properties must fit an index signature, so extra keys are `unknown` next to them.
  if (valueOfExtra !== null) lines.push(`${inner}[key: string]: unknown;`);
  return `{\n${lines.join('\n')}\n${indent}}`;
}

/** Parenthesises a type with a top-level `|` or `&` used as an array element or union/intersection member. */
function wrap(type: string): string {
  let depth = 0;
  let quote = '';
  for (let i = 0; i < type.length; i++) {
    const c = type[i];
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = '';
    } else if (c === '"' || c === "'") quote = c;
    else if ('{[(<'.includes(c)) depth++;
    else if ('}])>'.includes(c)) depth--;
    else if (depth === 0 && (c === '|' || c === '&')) return `(${type})`;
  }
  return type;
}

function union(parts: string[]): string {
  const unique = [...new Set(parts)];
  return unique.length ? unique.join(' | ') : 'never';
}
