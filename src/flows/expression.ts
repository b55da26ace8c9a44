/**
 * The expression language of condition nodes and loop guards: a small, safe grammar parsed here
 * (never `eval`), over read-only paths into a flow's input and its nodes' outputs.
 *
 *   expr    := or
 *   or      := and (("or" | "||") and)*
 *   and     := not (("and" | "&&") not)*
 *   not     := ("not" | "!") not | compare
 *   compare := value (("==" | "!=" | "<" | "<=" | ">" | ">=" | "contains" | "in") value)?
 *   value   := number | 'text' | "text" | true | false | null | path | "(" expr ")"
 *   path    := name ("." name | "[" integer "]")*
 *
 * A path that leads nowhere is `null`; `==` compares values (objects and lists by their JSON),
 * `<`… compare two numbers or two strings (anything else is false), `a contains b` is a substring
 * of a text or an element of a list, `a in b` is `b contains a`. Truthiness is JavaScript's, except
 * that an empty list is false.
 */

export const MAX_EXPRESSION_CHARS = 500;
/** Nesting of parentheses and `not`s: the parser recurses. */
const MAX_EXPRESSION_DEPTH = 20;

export type Expr =
  | { kind: 'literal'; value: string | number | boolean | null }
  | { kind: 'path'; parts: Array<string | number>; text: string }
  | { kind: 'not'; operand: Expr }
  | { kind: 'logic'; op: 'and' | 'or'; left: Expr; right: Expr }
  | { kind: 'compare'; op: CompareOp; left: Expr; right: Expr };
type CompareOp = '==' | '!=' | '<' | '<=' | '>' | '>=' | 'contains' | 'in';

export class ExpressionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExpressionError';
  }
}

type Token =
  | { type: 'num'; value: number }
  | { type: 'str'; value: string }
  | { type: 'name'; value: string }
  | { type: 'op'; value: string }
  | { type: 'end' };

const OPERATORS = ['==', '!=', '<=', '>=', '&&', '||', '<', '>', '!', '(', ')', '.', '[', ']'];

function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let at = 0;
  while (at < source.length) {
    const char = source[at];
    if (/\s/.test(char)) {
      at += 1;
      continue;
    }
    const number = /^-?\d+(\.\d+)?/.exec(source.slice(at));
    if (number && (char !== '-' || !isValueEnd(tokens.at(-1)))) {
      tokens.push({ type: 'num', value: Number(number[0]) });
      at += number[0].length;
      continue;
    }
    if (char === "'" || char === '"') {
      const end = source.indexOf(char, at + 1);
      if (end === -1) throw new ExpressionError(`unterminated text starting at character ${at + 1}`);
      tokens.push({ type: 'str', value: source.slice(at + 1, end) });
      at = end + 1;
      continue;
    }
    const name = /^[A-Za-z_][A-Za-z0-9_-]*/.exec(source.slice(at));
    if (name) {
      tokens.push({ type: 'name', value: name[0] });
      at += name[0].length;
      continue;
    }
    const op = OPERATORS.find((candidate) => source.startsWith(candidate, at));
    if (!op) throw new ExpressionError(`unexpected "${char}" at character ${at + 1}`);
    tokens.push({ type: 'op', value: op });
    at += op.length;
  }
  tokens.push({ type: 'end' });
  return tokens;
}

const isValueEnd = (token: Token | undefined) =>
  token !== undefined &&
  (token.type === 'num' ||
    token.type === 'str' ||
    token.type === 'name' ||
    (token.type === 'op' && (token.value === ')' || token.value === ']')));

const describe = (token: Token) => (token.type === 'end' ? 'the end' : `"${String(token.value)}"`);

/** Parses an expression; throws {@link ExpressionError} with what is wrong. */
export function parseExpression(source: string): Expr {
  if (source.length > MAX_EXPRESSION_CHARS) throw new ExpressionError(`at most ${MAX_EXPRESSION_CHARS} characters`);
  const tokens = tokenize(source);
  let at = 0;
  let depth = 0;
  const peek = () => tokens[at];
  const isOp = (value: string) => {
    const token = peek();
    return (token.type === 'op' || token.type === 'name') && token.value === value;
  };
  const expect = (value: string) => {
    if (!isOp(value)) throw new ExpressionError(`expected "${value}" but found ${describe(peek())}`);
    at += 1;
  };
  const nested = <T>(parse: () => T): T => {
    if (++depth > MAX_EXPRESSION_DEPTH) throw new ExpressionError(`nested more than ${MAX_EXPRESSION_DEPTH} levels deep`);
    try {
      return parse();
    } finally {
      depth -= 1;
    }
  };

  const or = (): Expr => {
    let left = and();
    while (isOp('or') || isOp('||')) {
      at += 1;
      left = { kind: 'logic', op: 'or', left, right: and() };
    }
    return left;
  };
  const and = (): Expr => {
    let left = not();
    while (isOp('and') || isOp('&&')) {
      at += 1;
      left = { kind: 'logic', op: 'and', left, right: not() };
    }
    return left;
  };
  const not = (): Expr => {
    if (isOp('not') || isOp('!')) {
      at += 1;
      return nested(() => ({ kind: 'not', operand: not() }));
    }
    return compare();
  };
  const compare = (): Expr => {
    const left = value();
    for (const op of ['==', '!=', '<=', '>=', '<', '>', 'contains', 'in'] as const) {
      if (isOp(op)) {
        at += 1;
        return { kind: 'compare', op, left, right: value() };
      }
    }
    return left;
  };
  const value = (): Expr => {
    const token = peek();
    if (token.type === 'num' || token.type === 'str') {
      at += 1;
      return { kind: 'literal', value: token.value };
    }
    if (token.type === 'op' && token.value === '(') {
      at += 1;
      const inner = nested(or);
      expect(')');
      return inner;
    }
    if (token.type === 'name') {
      at += 1;
      if (token.value === 'true' || token.value === 'false') return { kind: 'literal', value: token.value === 'true' };
      if (token.value === 'null') return { kind: 'literal', value: null };
      if (['and', 'or', 'not', 'contains', 'in'].includes(token.value))
        throw new ExpressionError(`"${token.value}" needs a value before it`);
      const parts: Array<string | number> = [token.value];
      for (;;) {
        if (isOp('.')) {
          at += 1;
          const next = peek();
          if (next.type !== 'name' && next.type !== 'num')
            throw new ExpressionError(`expected a name after "." but found ${describe(next)}`);
          at += 1;
          parts.push(next.type === 'num' ? next.value : next.value);
        } else if (isOp('[')) {
          at += 1;
          const next = peek();
          if (next.type !== 'num' || !Number.isInteger(next.value))
            throw new ExpressionError(`expected a list index but found ${describe(next)}`);
          at += 1;
          parts.push(next.value);
          expect(']');
        } else break;
      }
      return {
        kind: 'path',
        parts,
        text: parts
          .map((part) => (typeof part === 'number' ? `[${part}]` : part))
          .join('.')
          .replace(/\.\[/g, '['),
      };
    }
    throw new ExpressionError(`expected a value but found ${describe(token)}`);
  };

  const tree = or();
  if (peek().type !== 'end') throw new ExpressionError(`unexpected ${describe(peek())}`);
  return tree;
}

/** Every path an expression reads, in order. */
export function pathsOf(expr: Expr): Array<Extract<Expr, { kind: 'path' }>> {
  switch (expr.kind) {
    case 'literal':
      return [];
    case 'path':
      return [expr];
    case 'not':
      return pathsOf(expr.operand);
    default:
      return [...pathsOf(expr.left), ...pathsOf(expr.right)];
  }
}

/** The value at a path of a JSON value (`null` where it leads nowhere). */
export function valueAt(root: unknown, parts: ReadonlyArray<string | number>): unknown {
  let value: unknown = root;
  for (const part of parts) {
    if (value === null || typeof value !== 'object') return null;
    if (Array.isArray(value)) {
      if (typeof part !== 'number') return null;
      value = value[part];
    } else {
      if (!Object.hasOwn(value, String(part))) return null;
      value = (value as Record<string, unknown>)[String(part)];
    }
  }
  return value === undefined ? null : value;
}

export const truthy = (value: unknown): boolean => (Array.isArray(value) ? value.length > 0 : Boolean(value));

const sameValue = (a: unknown, b: unknown) =>
  a !== null && typeof a === 'object' ? JSON.stringify(a) === JSON.stringify(b) : a === (b === undefined ? null : b);

/** Evaluates a parsed expression; `resolve` gives a path's value (the caller decides what roots mean). */
export function evaluate(expr: Expr, resolve: (parts: ReadonlyArray<string | number>) => unknown): unknown {
  switch (expr.kind) {
    case 'literal':
      return expr.value;
    case 'path':
      return resolve(expr.parts);
    case 'not':
      return !truthy(evaluate(expr.operand, resolve));
    case 'logic': {
      const left = truthy(evaluate(expr.left, resolve));
      if (expr.op === 'and') return left && truthy(evaluate(expr.right, resolve));
      return left || truthy(evaluate(expr.right, resolve));
    }
    case 'compare': {
      const left = evaluate(expr.left, resolve);
      const right = evaluate(expr.right, resolve);
      switch (expr.op) {
        case '==':
          return sameValue(left, right);
        case '!=':
          return !sameValue(left, right);
        case 'contains':
          return contains(left, right);
        case 'in':
          return contains(right, left);
        default:
          return order(expr.op, left, right);
      }
    }
  }
}

function contains(whole: unknown, part: unknown): boolean {
  if (typeof whole === 'string') return typeof part === 'string' && whole.includes(part);
  if (Array.isArray(whole)) return whole.some((item) => sameValue(item, part));
  return false;
}

function order(op: '<' | '<=' | '>' | '>=', left: unknown, right: unknown): boolean {
  const comparable = (typeof left === 'number' && typeof right === 'number') || (typeof left === 'string' && typeof right === 'string');
  if (!comparable) return false;
  const a = left as number | string;
  const b = right as number | string;
  return op === '<' ? a < b : op === '<=' ? a <= b : op === '>' ? a > b : a >= b;
}
