import { AppError } from '../lib/errors';
import type { Logger } from '../lib/logger';
import { checkPrompt, type PromptGuardMode } from './prompt-guard';

/**
 * The prompt guard at every door where a person's text becomes instructions for a model: a
 * generation prompt, a chat message (every transport), a journey answer, an agent's prompt
 * template, a flow's inputs, node prompts and chat messages. One function, so every door refuses
 * the same way: 422 `prompt_rejected` with the matched rules in `details.reasons`, before anything
 * is written or queued. In mode `warn` a match is logged and let through; `off` skips the guard.
 *
 * Length is each door's own rule (its schema bounds the text), so only the phrase rules apply here.
 */

/** Where a text came from, for the log line and the refusal's message. */
export type PromptSurface = 'generation' | 'chat' | 'journey' | 'agent_prompt_template' | 'flow_inputs' | 'flow_chat' | 'flow_node_prompt';

/** A text to check and where it sits in the request (`details.path` names it). */
export interface GuardedText {
  path: string;
  text: string | null | undefined;
}

/**
 * Throws 422 `prompt_rejected` when a text trips the guard in mode `block`. Returns the matched
 * rules (empty when none), so a caller in mode `warn` may record them.
 */
export function admitPrompt(
  mode: PromptGuardMode,
  surface: PromptSurface,
  texts: GuardedText[],
  log?: { logger: Logger; userId?: string },
): string[] {
  if (mode === 'off') return [];
  const reasons = new Set<string>();
  const paths: string[] = [];
  for (const { path, text } of texts) {
    if (!text) continue;
    const result = checkPrompt(text, mode, Number.POSITIVE_INFINITY);
    if (!result.flagged) continue;
    paths.push(path);
    for (const reason of result.reasons) reasons.add(reason);
  }
  if (!reasons.size) return [];
  const matched = [...reasons];
  log?.logger.warn({ userId: log.userId, surface, paths, reasons: matched, mode }, 'prompt flagged by guard');
  if (mode === 'block') throw promptRejected(matched, paths);
  return matched;
}

/** The refusal every guarded door answers with. */
export function promptRejected(reasons: string[], paths: string[] = []): AppError {
  return new AppError(422, 'prompt_rejected', 'The prompt was rejected by the prompt guard', {
    reasons,
    ...(paths.length ? { paths } : {}),
  });
}

/** Every string in a JSON value, with its path (`inputs.topic`, `inputs.items.0`), for the guard. */
export function textsOf(value: unknown, path: string, out: GuardedText[] = [], depth = 0): GuardedText[] {
  if (typeof value === 'string') out.push({ path, text: value });
  else if (depth < 8 && Array.isArray(value)) value.forEach((item, index) => textsOf(item, `${path}.${index}`, out, depth + 1));
  else if (depth < 8 && value && typeof value === 'object')
    for (const [key, item] of Object.entries(value)) textsOf(item, `${path}.${key}`, out, depth + 1);
  return out;
}
