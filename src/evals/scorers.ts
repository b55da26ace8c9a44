import vm from 'node:vm';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020';
import { z } from 'zod';
import { jsonInAnswer } from '../ai/answer-json';
import { AppError } from '../lib/errors';

/** Scorers one evaluation may run on each answer. */
export const MAX_SCORERS = 10;
/** Longest regular expression a `regex` scorer takes. */
export const MAX_PATTERN_CHARS = 1_000;
/** Largest JSON Schema a `json_schema` scorer takes, as JSON. */
export const MAX_SCORER_SCHEMA_CHARS = 20_000;
/** Longest rubric an `llm_judge` scorer takes. */
export const MAX_RUBRIC_CHARS = 4_000;
/**
 * How long a user's regular expression or JSON Schema may run on one answer: past it the run is
 * stopped and the answer scores 0, so a pattern that backtracks without end cannot hold a worker.
 */
export const RULE_TIMEOUT_MS = 100;

const name = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, 'letters, digits, `_` and `-`, at most 64')
  .optional()
  .describe('Its name in scores and comparisons (default: its type, then `type-2`, … for a second of a type)');

export const scorerSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('exact'),
    name,
    caseSensitive: z.boolean().default(true),
  }),
  z.strictObject({
    type: z.literal('contains'),
    name,
    value: z.string().min(1).max(10_000).optional().describe("The text the answer must contain (default: the row's expected output)"),
    caseSensitive: z.boolean().default(false),
  }),
  z.strictObject({
    type: z.literal('regex'),
    name,
    pattern: z.string().min(1).max(MAX_PATTERN_CHARS),
    flags: z
      .string()
      .regex(/^[imsu]*$/, 'only the flags i, m, s and u')
      .default(''),
  }),
  z.strictObject({
    type: z.literal('json_schema'),
    name,
    schema: z.record(z.string(), z.unknown()).describe('A JSON Schema (2020-12) the answer, as JSON, must validate against'),
  }),
  z.strictObject({
    type: z.literal('llm_judge'),
    name,
    rubric: z.string().min(1).max(MAX_RUBRIC_CHARS).describe('What a good answer is: the judge scores the answer against it'),
    model: z.object({ provider: z.string(), model: z.string() }).optional().describe('The judge model (default: the default model)'),
  }),
]);
export type ScorerInput = z.input<typeof scorerSchema>;
export type Scorer = z.output<typeof scorerSchema> & { name: string };
export type RuleScorer = Exclude<Scorer, { type: 'llm_judge' }>;
export type JudgeScorer = Extract<Scorer, { type: 'llm_judge' }>;

export const scorersSchema = z.array(scorerSchema).min(1).max(MAX_SCORERS);

/** What a scorer looks at: the row's input and expected output, and the execution's output. */
export interface Sample {
  input: Record<string, unknown>;
  expected: unknown;
  output: unknown;
}

export interface Score {
  scorer: string;
  score: number;
  reason: string;
}

/**
 * Checks parsed scorers beyond their shape and names them: a regular expression that does not
 * compile, a JSON Schema Ajv refuses or one too large, a judge model this deployment does not
 * serve, two scorers of one name. Every problem is a 400 `validation_failed` naming its path
 * (`scorers.1.pattern`).
 */
export function checkScorers(
  scorers: z.output<typeof scorersSchema>,
  knows: (ref: { provider: string; model: string }) => boolean,
): Scorer[] {
  const problems: Array<{ path: string; message: string }> = [];
  const seen = new Map<string, number>();
  const named = scorers.map((scorer): Scorer => {
    const count = (seen.get(scorer.type) ?? 0) + 1;
    seen.set(scorer.type, count);
    return { ...scorer, name: scorer.name ?? (count === 1 ? scorer.type : `${scorer.type}-${count}`) };
  });
  const names = new Set<string>();
  named.forEach((scorer, index) => {
    const at = (field: string) => `scorers.${index}.${field}`;
    if (names.has(scorer.name)) problems.push({ path: at('name'), message: `"${scorer.name}" names another scorer too` });
    names.add(scorer.name);
    if (scorer.type === 'regex') {
      try {
        new RegExp(scorer.pattern, scorer.flags);
      } catch (error) {
        problems.push({ path: at('pattern'), message: `not a valid regular expression: ${(error as Error).message}` });
      }
    }
    if (scorer.type === 'json_schema') {
      if (JSON.stringify(scorer.schema).length > MAX_SCORER_SCHEMA_CHARS)
        problems.push({ path: at('schema'), message: `at most ${MAX_SCORER_SCHEMA_CHARS} characters of JSON` });
      else {
        try {
          compileSchema(scorer.schema);
        } catch (error) {
          problems.push({ path: at('schema'), message: `not a valid JSON Schema: ${(error as Error).message}` });
        }
      }
    }
    if (scorer.type === 'llm_judge' && scorer.model && !knows(scorer.model))
      problems.push({ path: at('model'), message: `${scorer.model.provider}:${scorer.model.model} is not served by this deployment` });
  });
  if (problems.length)
    throw new AppError(400, 'validation_failed', `Invalid scorers: ${problems[0].path}: ${problems[0].message}`, problems);
  return named;
}

const validators = new Map<string, ValidateFunction>();
let ajv: Ajv2020 | undefined;

/** The schema's validator, compiled once per schema text (a few are kept). */
function compileSchema(schema: Record<string, unknown>): ValidateFunction {
  const key = JSON.stringify(schema);
  const cached = validators.get(key);
  if (cached) return cached;
  // `$id` would register the schema globally in Ajv: it is dropped, each schema stands alone.
  const { $id: _id, ...rest } = schema;
  ajv ??= new Ajv2020({ strict: false, validateFormats: false, allErrors: false });
  const validate = ajv.compile(rest);
  ajv.removeSchema(rest);
  if (validators.size >= 100) validators.delete(validators.keys().next().value!);
  validators.set(key, validate);
  return validate;
}

/** An answer as text: a string as is, anything else as JSON. */
export const textOf = (value: unknown): string => (typeof value === 'string' ? value : (JSON.stringify(value) ?? ''));

/**
 * Runs `work` under {@link RULE_TIMEOUT_MS}; null when it ran out of time twice. The limit is wall
 * time, so a busy host can stop a quick rule once: a rule is stopped only when a second run is
 * stopped too, and a runaway pattern still ends within twice the limit.
 */
function bounded<T>(work: () => T): { value: T } | null {
  const context = vm.createContext({ work });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      return { value: vm.runInContext('work()', context, { timeout: RULE_TIMEOUT_MS }) as T };
    } catch (error) {
      if ((error as { code?: string }).code !== 'ERR_SCRIPT_EXECUTION_TIMEOUT') throw error;
    }
  }
  return null;
}

/** A JSON value from an answer: a JSON value as is, a string parsed (a code fence around it tolerated). */
function jsonOf(output: unknown): { ok: true; value: unknown } | { ok: false } {
  return typeof output === 'string' ? jsonInAnswer(output) : { ok: true, value: output };
}

/** JSON with object keys sorted, so two equal values are equal text. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object')
    return `{${Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonical((value as Record<string, unknown>)[key])}`)
      .join(',')}}`;
  return JSON.stringify(value) ?? 'null';
}

/** One rule scorer's score of an answer: 1 or 0, with the reason. */
export function ruleScore(scorer: RuleScorer, sample: Sample): Score {
  const result = (pass: boolean, reason: string): Score => ({ scorer: scorer.name, score: pass ? 1 : 0, reason });
  switch (scorer.type) {
    case 'exact': {
      if (sample.expected === null || sample.expected === undefined) return result(false, 'The row has no expected output');
      if (typeof sample.expected === 'string' || typeof sample.output === 'string') {
        const fold = (text: string) => (scorer.caseSensitive ? text.trim() : text.trim().toLowerCase());
        return fold(textOf(sample.output)) === fold(textOf(sample.expected))
          ? result(true, 'The answer equals the expected output')
          : result(false, 'The answer differs from the expected output');
      }
      return canonical(sample.output) === canonical(sample.expected)
        ? result(true, 'The answer equals the expected JSON value')
        : result(false, 'The answer differs from the expected JSON value');
    }
    case 'contains': {
      const wanted = scorer.value ?? (sample.expected === null || sample.expected === undefined ? undefined : textOf(sample.expected));
      if (wanted === undefined) return result(false, 'The row has no expected output');
      const fold = (text: string) => (scorer.caseSensitive ? text : text.toLowerCase());
      return fold(textOf(sample.output)).includes(fold(wanted))
        ? result(true, 'The answer contains the expected text')
        : result(false, 'The answer does not contain the expected text');
    }
    case 'regex': {
      const regex = new RegExp(scorer.pattern, scorer.flags);
      const text = textOf(sample.output);
      const ran = bounded(() => regex.test(text));
      if (!ran) return result(false, `The pattern ran longer than ${RULE_TIMEOUT_MS} ms on this answer and was stopped`);
      return ran.value ? result(true, 'The answer matches the pattern') : result(false, 'The answer does not match the pattern');
    }
    case 'json_schema': {
      const parsed = jsonOf(sample.output);
      if (!parsed.ok) return result(false, 'The answer is not JSON');
      const validate = compileSchema(scorer.schema);
      const ran = bounded(() => validate(parsed.value));
      if (!ran) return result(false, `The schema ran longer than ${RULE_TIMEOUT_MS} ms on this answer and was stopped`);
      if (ran.value) return result(true, 'The answer validates against the schema');
      const first = validate.errors?.[0];
      return result(
        false,
        `The answer does not validate: ${first ? `${first.instancePath || '(root)'} ${first.message ?? ''}`.trim() : 'invalid'}`,
      );
    }
  }
}
