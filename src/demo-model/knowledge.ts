import { currentExchange, lastUserText, offeredToolNames, stem, words } from './conversation';
import { pickToolCall } from './chat-tools';
import { messageText, type ChatMessage, type ChatRequest, type ChatTurn } from './openai-compatible-server';

/**
 * Answers from retrieved passages, offline and deterministically: the passages come numbered inside
 * a `<untrusted_data source="search_knowledge">` envelope, in the system prompt (a chatflow with a
 * knowledge setting) or as the result of a `search_knowledge` call. The answer quotes the sentence
 * that shares the most words with the question and cites its passage (`[2]`); with no such
 * sentence it says the documents do not say. Offered `search_knowledge` and no better tool, it
 * searches with the user's words first.
 */

const SEARCH_TOOL = 'search_knowledge';
const ENVELOPE = /<untrusted_data source="search_knowledge">\n([\s\S]*?)\n<\/untrusted_data>/;

/** Words a question shares with any text: they say nothing about which sentence answers it. */
const STOPWORDS = new Set(
  'a an and are as at be by can de do does did for from how i in is it its me my of on or our the their there this to was we what when where which who why will with you your long much many'.split(
    ' ',
  ),
);

interface Passage {
  index: number;
  place: string;
  text: string;
}

/** The numbered passages of a knowledge envelope (`[n] place` then its text, passages apart by a blank line). */
function passagesIn(text: string): Passage[] | undefined {
  const body = ENVELOPE.exec(text)?.[1];
  if (body === undefined) return undefined;
  const passages: Passage[] = [];
  for (const part of body.split(/\n\n(?=\[\d+\] )/)) {
    const head = /^\[(\d+)\] ([^\n]*)\n?([\s\S]*)$/.exec(part);
    if (head) passages.push({ index: Number(head[1]), place: head[2], text: head[3] });
  }
  return passages;
}

/** The passages the current request was given: its latest `search_knowledge` result, else its system prompt's. */
function retrieved(messages: ChatMessage[]): Passage[] | undefined {
  const exchange = currentExchange(messages);
  for (let i = exchange.length - 1; i >= 0; i--) {
    const found = exchange[i].role === 'tool' ? passagesIn(messageText(exchange[i])) : undefined;
    if (found) return found;
  }
  const system = messages.find((message) => message.role === 'system');
  return system ? passagesIn(messageText(system)) : undefined;
}

const contentWords = (text: string) =>
  new Set(
    words(text)
      .filter((word) => !STOPWORDS.has(word))
      .map(stem),
  );

/** The sentence of the passages that shares the most words with the question, with its passage. */
export function groundedAnswer(question: string, passages: readonly Passage[]): string {
  const asked = contentWords(question);
  let best: { passage: Passage; sentence: string; score: number } | undefined;
  for (const passage of passages)
    for (const sentence of passage.text.split(/(?<=[.!?])\s+|\n+/)) {
      const flat = sentence.replace(/^[#>*\-\s]+/, '').trim();
      if (!flat) continue;
      const score = [...contentWords(flat)].filter((word) => asked.has(word)).length;
      if (score > (best?.score ?? 0)) best = { passage, sentence: flat, score };
    }
  if (!best) return 'The documents I searched do not say anything about that.';
  return `According to ${best.passage.place}: ${best.sentence} [${best.passage.index}]`;
}

/** The turn when the request is about retrieved passages (or may search for them), else undefined. */
export function knowledgeTurn(request: ChatRequest): ChatTurn | undefined {
  const question = lastUserText(request.messages);
  const passages = retrieved(request.messages);
  if (passages) return { text: groundedAnswer(question, passages) };
  const offered = offeredToolNames(request);
  if (!offered.has(SEARCH_TOOL) || request.tool_choice === 'none') return undefined;
  // Another offered tool that fits the message better (tasks, notes, …) keeps the turn.
  const others = (request.tools ?? []).filter((tool) => tool.function.name !== SEARCH_TOOL);
  if (others.length && pickToolCall(question, others)) return undefined;
  return { toolCalls: [{ name: SEARCH_TOOL, args: { query: question.trim().slice(0, 1_000) || 'overview' } }] };
}
