import { messageText, type ChatMessage, type ChatRequest } from './openai-compatible-server';

/** Text of the most recent user message ('' when there is none). */
export function lastUserText(messages: ChatMessage[]): string {
  for (let i = messages.length - 1; i >= 0; i--) {
    if (messages[i].role === 'user') return messageText(messages[i]);
  }
  return '';
}

/**
 * Messages after the latest user message: the model's own work on the current request.
 * Looking only here (not at the whole history) lets a multi-request conversation start afresh.
 */
export function currentExchange(messages: ChatMessage[]): ChatMessage[] {
  for (let i = messages.length - 1; i >= 0; i--) {
    if (messages[i].role === 'user') return messages.slice(i + 1);
  }
  return messages;
}

/** Names of the function tools the request offers. */
export function offeredToolNames(request: ChatRequest): Set<string> {
  return new Set((request.tools ?? []).map((tool) => tool.function.name));
}

/** Text of every system, developer and user message, joined by blank lines. */
export function promptText(messages: ChatMessage[]): string {
  return messages
    .filter((m) => m.role === 'system' || m.role === 'developer' || m.role === 'user')
    .map(messageText)
    .join('\n\n');
}

/**
 * What a tool returned, out of the envelope the assistant wraps it in
 * (`<untrusted_data source="…">…</untrusted_data>`): the demo model answers from the data inside,
 * as it did before results were framed. A result without an envelope is read as it is.
 */
export function toolResultText(message: Pick<ChatMessage, 'content'>): string {
  const text = messageText(message);
  const framed = /^<untrusted_data source="[^"]*">\n([\s\S]*)\n<\/untrusted_data>$/.exec(text);
  return framed ? framed[1] : text;
}

/** Whether a tool result reports a failure, by the convention our tools follow. */
export function isErrorResult(text: string): boolean {
  return /^\s*(error\b|failed\b)/i.test(text);
}

/** A sentence that speaks to the model ("Do not try it again", "Tell the user …"), not about what happened. */
const TO_THE_MODEL = /(?:^|[.;!]\s+)(?:do not|don't|never|tell the user|ask the user|try again|retry)\b/i;

/**
 * What an error result says happened, for the demo model to tell the user: without its `Error:`
 * prefix, and cut before the first sentence that instructs the model, which a user should not read.
 */
export function errorFacts(text: string): string {
  const facts = text.trim().replace(/^error:\s*/i, '');
  const cut = TO_THE_MODEL.exec(facts);
  const kept = cut ? facts.slice(0, cut.index + (/^[.;!]/.test(cut[0]) ? 1 : 0)) : facts;
  return kept.trim() || facts;
}

/** Lowercase word tokens (letters and digits of any script, hyphens inside words). */
export function words(text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{N}]+(?:-[\p{L}\p{N}]+)*/gu) ?? [];
}

/** Crude singularising stemmer: enough to match "tasks" with `list_tasks`. */
export function stem(word: string): string {
  if (word.length > 4 && word.endsWith('ies')) return `${word.slice(0, -3)}y`;
  if (word.length > 3 && word.endsWith('s') && !word.endsWith('ss')) return word.slice(0, -1);
  return word;
}

/** Upper-cases the first letter. */
export function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
