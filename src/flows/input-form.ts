import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020';
import { decisionsOf, type HumanInputNode } from './node-kinds';
import { regexKeyword } from './schema-keywords';

/**
 * The form of a human_input node: a JSON Schema (2020-12) of an object whose properties are its
 * fields. It is checked on save as a real JSON Schema (against the meta-schema, as Ajv compiles
 * it), and every answer is validated against it before anything is written.
 */

interface Problem {
  path: string;
  message: string;
}

/** A form as JSON text: generous for a form, small against a 1 MB body of one (an `outputSchema`'s bound). */
export const MAX_FORM_CHARS = 20_000;

/** The form of a node that names none: no fields, an answer is `{}` (with a decision). */
export const EMPTY_FORM: Record<string, unknown> = { type: 'object', properties: {}, additionalProperties: false };

/** An answer's values as JSON text: what a node output may hold (MAX_NODE_OUTPUT_CHARS). */
export const MAX_ANSWER_CHARS = 16_000;

/** Problems of an answer reported at most (Ajv collects every one). */
const MAX_ANSWER_PROBLEMS = 20;

/** Compiled forms, the oldest first out: a form is compiled once while it is in use. */
const validators = new Map<string, { schema: Record<string, unknown>; validate: ValidateFunction }>();
const MAX_VALIDATORS = 200;
let ajv: Ajv2020 | undefined;

/**
 * The form's validator (Ajv, every error collected, formats not checked), compiled once per form
 * text. `$id` and `$schema` are left out: a form stands alone and is read as 2020-12. Throws when
 * the schema is not a valid JSON Schema.
 */
export function formValidator(form: Record<string, unknown>): ValidateFunction {
  const key = JSON.stringify(form);
  const known = validators.get(key);
  if (known) return known.validate;
  const { $id: _id, $schema: _dialect, ...compiled } = form;
  ajv ??= new Ajv2020({ strict: false, validateFormats: false, allErrors: true });
  const validate = ajv.compile(compiled);
  if (validators.size >= MAX_VALIDATORS) {
    const [oldest, entry] = validators.entries().next().value!;
    validators.delete(oldest);
    ajv.removeSchema(entry.schema);
  }
  validators.set(key, { schema: compiled, validate });
  return validate;
}

/**
 * What is wrong with a node's form, each problem at `path` (the form's path in the request): too
 * large, a regular-expression keyword (an answer is never matched against a user's pattern, whose
 * backtracking could stall the process), not an object schema, or not a valid JSON Schema.
 */
export function formProblems(form: Record<string, unknown>, path: string): Problem[] {
  if (JSON.stringify(form).length > MAX_FORM_CHARS) return [{ path, message: `at most ${MAX_FORM_CHARS} characters of JSON` }];
  const regex = regexKeyword(form);
  if (regex)
    return [
      {
        path: [path, ...regex.map(String)].join('.'),
        message: `"${String(regex.at(-1))}" is not supported: regular expressions are not run on answers`,
      },
    ];
  if (form.type !== 'object') return [{ path: `${path}.type`, message: 'a form is a JSON Schema of an object: set "type": "object"' }];
  const order = orderProblem(form, path);
  if (order) return [order];
  try {
    formValidator(form);
  } catch (error) {
    return [{ path, message: `not a valid JSON Schema: ${error instanceof Error ? error.message.slice(0, 300) : 'invalid'}` }];
  }
  return [];
}

/** The problems of `values` against the form (each at `values.<field>`), none when they validate. */
export function answerProblems(form: Record<string, unknown>, values: unknown, root = 'values'): Problem[] {
  const text = JSON.stringify(values) ?? '';
  if (text.length > MAX_ANSWER_CHARS) return [{ path: root, message: `at most ${MAX_ANSWER_CHARS} characters of JSON` }];
  const validate = formValidator(form);
  if (validate(values)) return [];
  return (validate.errors ?? []).slice(0, MAX_ANSWER_PROBLEMS).map((error) => {
    const missing = error.keyword === 'required' ? (error.params as { missingProperty?: string }).missingProperty : undefined;
    const at = `${error.instancePath.replace(/\//g, '.')}${missing ? `.${missing}` : ''}`;
    return { path: `${root}${at}`, message: error.message ?? 'invalid' };
  });
}

/**
 * A form as written, with the order of its fields kept as `propertyOrder` (unless it gives one):
 * a definition is stored as PostgreSQL `jsonb`, which does not keep the order of an object's keys,
 * and a form's fields should show in the order their author wrote them.
 */
export function withFieldOrder(form: unknown): unknown {
  if (form === null || typeof form !== 'object' || Array.isArray(form)) return form;
  const { properties, propertyOrder } = form as { properties?: unknown; propertyOrder?: unknown };
  if (propertyOrder !== undefined || properties === null || typeof properties !== 'object' || Array.isArray(properties)) return form;
  return { ...form, propertyOrder: Object.keys(properties) };
}

/** The problem of a form's `propertyOrder` (a list of its property names), or null. */
function orderProblem(form: Record<string, unknown>, path: string): Problem | null {
  const order = form.propertyOrder;
  if (order === undefined) return null;
  const names = Object.keys((form.properties as Record<string, unknown> | undefined) ?? {});
  if (!Array.isArray(order) || order.some((name) => typeof name !== 'string' || !names.includes(name)))
    return { path: `${path}.propertyOrder`, message: 'the order of the fields: a list of the names under properties' };
  return null;
}

/** The node's form, or {@link EMPTY_FORM} when it names none. */
export const formOf = (node: { form?: Record<string, unknown> }): Record<string, unknown> => node.form ?? EMPTY_FORM;

/**
 * The checks on save of a human_input node that its shape cannot state, each at its path: a usable
 * form; recipients listed once; a timeout whose outcome has what it needs (`default`: values that
 * answer the form, and a decision when the node has decisions; `decision`: one of its decisions;
 * `fail`: neither).
 */
export function humanInputProblems(node: HumanInputNode, at: (path: PropertyKey[]) => string): Problem[] {
  const problems: Problem[] = [];
  const form = node.form;
  const formBroken = form !== undefined && formProblems(form, at(['form'])).length > 0;
  if (form !== undefined) problems.push(...formProblems(form, at(['form'])));
  const seen = new Set<string>();
  (node.recipients ?? []).forEach((recipient, index) => {
    const key = recipient.toLowerCase();
    if (seen.has(key)) problems.push({ path: at(['recipients', index]), message: `"${recipient}" is listed twice` });
    seen.add(key);
  });
  const timeout = node.timeout;
  if (!timeout) return problems;
  const names = decisionsOf(node).map((decision) => decision.name);
  const namesDecision = () => {
    if (timeout.decision === undefined)
      problems.push({
        path: at(['timeout', 'decision']),
        message: `name the decision taken when time is over: one of ${names.join(', ')}`,
      });
    else if (!names.includes(timeout.decision))
      problems.push({
        path: at(['timeout', 'decision']),
        message: names.length
          ? `"${timeout.decision}" is not one of the node's decisions (${names.join(', ')})`
          : `"${timeout.decision}": the node has no decisions`,
      });
  };
  switch (timeout.outcome) {
    case 'fail':
      if (timeout.values !== undefined)
        problems.push({ path: at(['timeout', 'values']), message: 'only an outcome "default" takes values' });
      if (timeout.decision !== undefined)
        problems.push({ path: at(['timeout', 'decision']), message: 'only an outcome "default" or "decision" takes a decision' });
      break;
    case 'default':
      if (!formBroken) problems.push(...answerProblems(formOf(node), timeout.values ?? {}, at(['timeout', 'values'])));
      if (names.length || timeout.decision !== undefined) namesDecision();
      break;
    case 'decision':
      if (timeout.values !== undefined)
        problems.push({ path: at(['timeout', 'values']), message: 'only an outcome "default" takes values' });
      if (!names.length) problems.push({ path: at(['timeout', 'outcome']), message: 'outcome "decision" needs decisions on the node' });
      else namesDecision();
      break;
  }
  return problems;
}
