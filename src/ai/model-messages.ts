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
import type { ModelToolCall } from './model-gateway';

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
 * What the model said: its text and, when it called tools, those calls as the gateway returned
 * them. A call whose arguments are not a JSON object (`parsed` unset) is kept as an invalid call,
 * so the model sees on its next round that it was refused.
 */
export function assistantMessage(text: string, calls: readonly ModelToolCall[] = []): ModelMessage {
  if (!calls.length) return new AIMessage(text);
  return new AIMessage({
    content: text,
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
