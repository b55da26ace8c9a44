import { AppError } from '../lib/errors';
import type { DecisionAnswer } from '../models/hitl-repository';
import type { HitlRequestRow } from '../models/schema';

/** What a person may add to a decision: an approval's own arguments for the call, a rejection's message to the model. */
export interface DecisionOptions {
  arguments?: Record<string, unknown>;
  message?: string;
}

/** The problems of arguments an approver gives a call instead of the model's (each at `arguments.<path>`; none: they fit). */
export type ArgumentsCheck = (row: HitlRequestRow, args: Record<string, unknown>) => Array<{ path: string; message: string }>;

/** A rejection's reply as the model reads it: the call's result, after which the turn goes on. */
export const MAX_REPLY_CHARS = 2_000;
/** Edited arguments as JSON text at most. */
export const MAX_EDITED_ARGUMENTS_CHARS = 20_000;

/**
 * What a decision carries besides yes or no, checked before anything is written (400
 * `validation_failed` naming the problem): edited arguments only with an approval, as an object
 * that fits the tool's schema (`check`; without one, arguments cannot be edited); a reply only with
 * a rejection. A request decided by a quorum is approved or rejected as asked: neither.
 */
export function decisionAnswer(
  row: HitlRequestRow,
  approved: boolean,
  options: DecisionOptions,
  quorum: boolean,
  check: ArgumentsCheck | undefined,
): DecisionAnswer {
  const invalid = (path: string, message: string) =>
    new AppError(400, 'validation_failed', `Invalid decision: ${path}: ${message}`, [{ path, message }]);
  const { arguments: args, message } = options;
  if (args === undefined && message === undefined) return {};
  if (quorum) throw invalid(args !== undefined ? 'arguments' : 'message', 'a request decided by a quorum is approved or rejected as asked');
  if (args !== undefined) {
    if (!approved) throw invalid('arguments', 'only an approval runs the call with edited arguments');
    if (JSON.stringify(args).length > MAX_EDITED_ARGUMENTS_CHARS)
      throw invalid('arguments', `at most ${MAX_EDITED_ARGUMENTS_CHARS} characters of JSON`);
    if (!check) throw invalid('arguments', `the arguments of ${row.toolName} cannot be edited here`);
    const problems = check(row, args);
    if (problems.length)
      throw new AppError(400, 'validation_failed', `Invalid decision: ${problems[0].path}: ${problems[0].message}`, problems);
    return { editedArguments: args };
  }
  if (approved) throw invalid('message', 'a reply goes with a rejection: the model reads it instead of the result');
  const reply = message!.trim();
  if (!reply) throw invalid('message', 'the reply is empty');
  if (reply.length > MAX_REPLY_CHARS) throw invalid('message', `at most ${MAX_REPLY_CHARS} characters`);
  return { reply };
}
