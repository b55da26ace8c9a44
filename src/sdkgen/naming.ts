/** Identifier spelling for the generated clients: words from any spelling, then camel, snake or Pascal case. */

/** `Last-Event-ID` → [last, event, id]; `listCanvasMembers` → [list, canvas, members]; `costUSD` → [cost, usd]. */
export function words(name: string): string[] {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2')
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((word) => word.toLowerCase());
}

const capital = (word: string) => word.charAt(0).toUpperCase() + word.slice(1);

export const camelCase = (name: string) =>
  words(name)
    .map((word, i) => (i === 0 ? word : capital(word)))
    .join('');
export const pascalCase = (name: string) => words(name).map(capital).join('');
export const snakeCase = (name: string) => words(name).join('_');

const PYTHON_KEYWORDS = new Set([
  'False',
  'None',
  'True',
  'and',
  'as',
  'assert',
  'async',
  'await',
  'break',
  'class',
  'continue',
  'def',
  'del',
  'elif',
  'else',
  'except',
  'finally',
  'for',
  'from',
  'global',
  'if',
  'import',
  'in',
  'is',
  'lambda',
  'nonlocal',
  'not',
  'or',
  'pass',
  'raise',
  'return',
  'try',
  'while',
  'with',
  'yield',
  'self',
]);

const TS_RESERVED = new Set([
  'break',
  'case',
  'catch',
  'class',
  'const',
  'continue',
  'debugger',
  'default',
  'delete',
  'do',
  'else',
  'enum',
  'export',
  'extends',
  'false',
  'finally',
  'for',
  'function',
  'if',
  'import',
  'in',
  'instanceof',
  'new',
  'null',
  'return',
  'super',
  'switch',
  'this',
  'throw',
  'true',
  'try',
  'typeof',
  'var',
  'void',
  'while',
  'with',
  'yield',
  'let',
  'static',
  'implements',
  'interface',
  'package',
  'private',
  'protected',
  'public',
  'await',
  'arguments',
  'eval',
  'options',
]);

/** A Python parameter or method name: snake case, a leading digit or keyword escaped. */
export function pythonName(name: string): string {
  let out = snakeCase(name) || 'value';
  if (/^[0-9]/.test(out)) out = `_${out}`;
  return PYTHON_KEYWORDS.has(out) ? `${out}_` : out;
}

/** A TypeScript parameter name: camel case, a leading digit or reserved word escaped (`options` is the generated options bag). */
export function tsParamName(name: string): string {
  let out = camelCase(name) || 'value';
  if (/^[0-9]/.test(out)) out = `_${out}`;
  return TS_RESERVED.has(out) ? `${out}_` : out;
}

/** A property key as TypeScript writes it: bare when it is an identifier, quoted otherwise. */
export const tsKey = (name: string) => (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(name) ? name : JSON.stringify(name));

/** Plurals the rules below would get wrong (`bases` is not `bas`, as `canvases` is `canvas`). */
const IRREGULAR: Record<string, string> = { bases: 'base' };

/** The singular of a namespace noun, for stripping it from operation ids (`canvases` → `canvas`). */
export function singular(noun: string): string {
  if (noun in IRREGULAR) return IRREGULAR[noun];
  if (/(ss|sh|ch|x|s)es$/.test(noun)) return noun.slice(0, -2);
  if (noun.endsWith('ies')) return `${noun.slice(0, -3)}y`;
  if (noun.endsWith('s') && !noun.endsWith('ss')) return noun.slice(0, -1);
  return noun;
}
