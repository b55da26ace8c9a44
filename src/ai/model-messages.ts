import {
  AIMessage,
  HumanMessage,
  mapChatMessagesToStoredMessages,
  mapStoredMessagesToChatMessages,
  SystemMessage,
  ToolMessage,
  type BaseMessage,
  type StoredMessage,
} from '@langchain/core/messages';
import type { OpenAI } from 'openai';
import { langchainOpenAI } from './langchain-openai';

/** One tool call of a turn: the raw argument text, and its parsed object when the JSON is one. */
export interface ModelToolCall {
  id: string;
  name: string;
  args: string;
  parsed?: Record<string, unknown>;
  /** The provider's own fields of the call (`extra_content`, e.g. Gemini's thought signature), sent back with it unchanged. */
  extra?: Record<string, unknown>;
}

/*
 * The model gateway's own message vocabulary. Code outside src/ai builds a conversation with these
 * functions and types and never imports LangChain: which library carries the messages (LangChain's
 * classes today, converted to the provider's wire form in model-stream.ts) is the gateway's business.
 * Worker side only, like the gateway: the API process never loads LangChain.
 */

/** One message of a model conversation (opaque outside src/ai: build it with the functions below). */
export type ModelMessage = BaseMessage;

/** A message as plain JSON, for a conversation that is stored and resumed later (a parked assistant turn). */
export type StoredModelMessage = StoredMessage;

/** The instructions: what the model is and must do. */
export const systemMessage = (text: string): ModelMessage => new SystemMessage(text);

/** What the user (or the caller on the user's behalf) said. */
export const userMessage = (text: string): ModelMessage => new HumanMessage(text);

/**
 * What a provider asks to get back, unchanged, on the assistant message of the same conversation:
 * the turn's hidden reasoning (DeepSeek's `reasoning_content`, refused with a 400 on the next
 * request of a tool turn when it is missing) and each tool call's `extra_content` (Gemini's
 * `google.thought_signature`, refused likewise). Kept beside the message, never in its text, and
 * sent only to the model that produced it: another model has no use for it and may refuse it.
 */
interface ProviderEcho {
  model: string;
  reasoning?: string;
  /** `extra_content` by tool call id. */
  extras?: Record<string, Record<string, unknown>>;
}

/** The key of the echo in an assistant message's `additional_kwargs` (kept when the conversation is stored). */
const ECHO_KEY = 'provider_echo';

/**
 * What the model said: its text and, when it called tools, those calls as the gateway returned
 * them. A call whose arguments are not a JSON object (`parsed` unset) is kept as an invalid call,
 * so the model sees on its next round that it was refused. `turn` (the gateway's turn: its model,
 * its hidden reasoning, its calls' provider fields) is what goes back to that model unchanged.
 */
export function assistantMessage(
  text: string,
  calls: readonly ModelToolCall[] = [],
  turn?: { model: string; reasoning?: string },
): ModelMessage {
  const echo = providerEcho(calls, turn);
  // Without an echo the message is exactly what it was before echoes existed (stored turns compare equal).
  const kept = echo ? { additional_kwargs: { [ECHO_KEY]: echo } } : {};
  if (!calls.length) return echo ? new AIMessage({ content: text, ...kept }) : new AIMessage(text);
  return new AIMessage({
    content: text,
    ...kept,
    tool_calls: calls.flatMap((call) =>
      call.parsed === undefined ? [] : [{ id: call.id, name: call.name, args: call.parsed, type: 'tool_call' as const }],
    ),
    invalid_tool_calls: calls.flatMap((call) =>
      call.parsed === undefined
        ? [{ id: call.id, name: call.name, args: call.args, error: 'arguments are not valid JSON', type: 'invalid_tool_call' as const }]
        : [],
    ),
  });
}

function providerEcho(calls: readonly ModelToolCall[], turn?: { model: string; reasoning?: string }): ProviderEcho | undefined {
  if (!turn) return undefined;
  const extras = Object.fromEntries(calls.flatMap((call) => (call.extra ? [[call.id, call.extra] as const] : [])));
  const echo: ProviderEcho = {
    model: turn.model,
    ...(turn.reasoning ? { reasoning: turn.reasoning } : {}),
    ...(Object.keys(extras).length ? { extras } : {}),
  };
  return echo.reasoning || echo.extras ? echo : undefined;
}

/** A message param of the Chat Completions wire form. */
export type CompletionMessage = OpenAI.Chat.Completions.ChatCompletionMessageParam;

/**
 * The conversation in the provider's wire form (LangChain's public converter), with each assistant
 * message's echo put back where the provider expects it when the request goes to the model that
 * produced it: `reasoning_content` beside the content, `extra_content` on each of its tool calls.
 */
export function completionMessages(messages: readonly ModelMessage[], model: string): CompletionMessage[] {
  const { convertMessagesToCompletionsMessageParams } = langchainOpenAI();
  return messages.flatMap((message) => {
    const params = convertMessagesToCompletionsMessageParams({ messages: [message], model }) as CompletionMessage[];
    const echo = message.additional_kwargs?.[ECHO_KEY] as ProviderEcho | undefined;
    if (!echo || echo.model !== model || params[0]?.role !== 'assistant') return params;
    const [first, ...rest] = params as [OpenAI.Chat.Completions.ChatCompletionAssistantMessageParam, ...CompletionMessage[]];
    const withEcho: CompletionMessage & { reasoning_content?: string } = {
      ...first,
      ...(echo.reasoning ? { reasoning_content: echo.reasoning } : {}),
      ...(first.tool_calls && echo.extras
        ? { tool_calls: first.tool_calls.map((call) => (echo.extras![call.id] ? { ...call, extra_content: echo.extras![call.id] } : call)) }
        : {}),
    };
    return [withEcho, ...rest];
  });
}

/**
 * Collects, while a turn streams, what the provider will want back (see {@link assistantMessage}):
 * the pieces of `reasoning_content`, and the `extra_content` of each tool call, by id (or by index
 * for a call sent without one). Constant work per chunk.
 */
export class ProviderEchoCollector {
  private readonly reasoningParts: string[] = [];
  private readonly byId = new Map<string, Record<string, unknown>>();
  private readonly byIndex = new Map<number, Record<string, unknown>>();

  /** One streamed delta (the fields are not in the SDK's types: read as unknown). */
  observe(delta: unknown): void {
    const fields = delta as { reasoning_content?: unknown; tool_calls?: Array<{ id?: unknown; index?: unknown; extra_content?: unknown }> };
    if (typeof fields.reasoning_content === 'string' && fields.reasoning_content) this.reasoningParts.push(fields.reasoning_content);
    if (!Array.isArray(fields.tool_calls)) return;
    for (const part of fields.tool_calls) {
      const extra = part?.extra_content;
      if (!extra || typeof extra !== 'object' || Array.isArray(extra)) continue;
      if (typeof part.id === 'string' && part.id) this.byId.set(part.id, extra as Record<string, unknown>);
      else this.byIndex.set(typeof part.index === 'number' ? part.index : 0, extra as Record<string, unknown>);
    }
  }

  /** The turn's hidden reasoning; undefined when the provider sent none. */
  get reasoning(): string | undefined {
    return this.reasoningParts.length ? this.reasoningParts.join('') : undefined;
  }

  /** The calls, each with its provider fields when it had any. */
  attach<T extends ModelToolCall>(calls: T[]): T[] {
    if (!this.byId.size && !this.byIndex.size) return calls;
    return calls.map((call, position) => {
      const extra = this.byId.get(call.id) ?? this.byIndex.get(position);
      return extra ? { ...call, extra } : call;
    });
  }
}

/** The result of tool call `callId`, as the model reads it on its next round; `error` marks a refused or failed call. */
export const toolResultMessage = (callId: string, content: string, status: 'success' | 'error' = 'success'): ModelMessage =>
  new ToolMessage({ content, tool_call_id: callId, status });

/** A stored chat history: the user's lines as user messages, everything else as the model's answers. */
export const historyMessages = (history: ReadonlyArray<{ role: string; content: string }>): ModelMessage[] =>
  history.map((message) => (message.role === 'user' ? userMessage(message.content) : assistantMessage(message.content)));

/** A conversation as JSON (for a database column); {@link loadMessages} reads it back. */
export const storeMessages = (messages: readonly ModelMessage[]): StoredModelMessage[] => mapChatMessagesToStoredMessages([...messages]);

/** A conversation stored with {@link storeMessages}, as messages again. */
export const loadMessages = (stored: readonly StoredModelMessage[]): ModelMessage[] => mapStoredMessagesToChatMessages([...stored]);
