import { AIMessage, AIMessageChunk, SystemMessage, ToolMessage, type BaseMessage } from '@langchain/core/messages';
import { ModelUnavailableError } from '../ai/canvas-agent';
import { chatModel, type LlmEndpoint } from '../ai/llm';
import { langchainTools, type AssistantTool } from './tools';

/** Tool rounds before the model must answer (SPEC §6). */
export const MAX_TOOL_ITERATIONS = 5;

const WRAP_UP = 'You have used every tool step this turn allows. Answer the user now from the tool results above, without calling tools; say what is left undone.';
const NO_ANSWER = 'I could not finish this within the allowed number of steps. Please ask again, more specifically.';

/** Tokens of one model call. */
export interface ModelCallUsage {
  provider: string;
  model: string;
  inputTokens: number;
  outputTokens: number;
}

export interface AgentLoopOptions {
  endpoint: LlmEndpoint;
  /** System prompt, history and the user's message. */
  messages: BaseMessage[];
  tools: AssistantTool[];
  /** Runs a call and returns its text result; never throws (failures are "Error: …" text). */
  executeTool(name: string, args: unknown): Promise<string>;
  /** Streamed answer text, in order; the pieces concatenate to the result's `response`. */
  onText(text: string): void;
  /** After each model call (usage is recorded per call). */
  onModelCall?(usage: ModelCallUsage): Promise<void> | void;
  /** After each tool call. */
  onToolResult?(name: string, args: unknown, result: string): Promise<void> | void;
  maxToolIterations?: number;
  signal?: AbortSignal;
  /**
   * Whether a call must wait for a human (approvals, 0021). The loop then stops BEFORE running it
   * and returns `parked`: the state to resume from once the call is decided.
   */
  mustPark?(name: string, args: unknown): boolean;
  /** Continues a parked turn: `result` is the parked call's outcome (its tool's result, or a refusal). */
  resume?: { state: ParkedLoop; result: string };
}

/** One tool call of a model round. */
export interface LoopCall {
  id: string;
  name: string;
  /** undefined when the model sent arguments that were not valid JSON. */
  args: unknown;
}

/** Where a parked turn stopped: everything needed to continue it on any worker. */
export interface ParkedLoop {
  /** The conversation so far, ending with the round's AI message and the results of its earlier calls. */
  messages: BaseMessage[];
  /** The round's calls not run yet; the first is the one waiting for a decision. */
  calls: LoopCall[];
  iteration: number;
  response: string;
  toolCalls: number;
}

export interface AgentLoopResult {
  response: string;
  toolIterations: number;
  toolCalls: number;
  /** Set when the turn stopped for an approval; `response` is then the text streamed so far. */
  parked?: ParkedLoop;
}

/**
 * The assistant's loop on LangChain primitives (as the canvas agent, 0012): stream the model with
 * the agent's tools bound, run its tool calls on the device, feed the results back, repeat. After
 * `maxToolIterations` rounds the model is called once more WITHOUT tools, so it has to answer.
 */
export async function runAgentLoop(options: AgentLoopOptions): Promise<AgentLoopResult> {
  const max = options.maxToolIterations ?? MAX_TOOL_ITERATIONS;
  const resumed = options.resume?.state;
  const messages = [...(resumed?.messages ?? options.messages)];
  let response = resumed?.response ?? '';
  let toolCalls = resumed?.toolCalls ?? 0;
  // Text of an earlier round ("Let me check…") and the next round's text are kept apart, in the
  // stream too, so the chunks still concatenate to exactly the response.
  let separate = false;
  const emit = (text: string) => {
    const piece = separate ? `\n\n${text}` : text;
    separate = false;
    response += piece;
    options.onText(piece);
  };

  /** Runs a round's calls in order; returns the calls left when one has to wait for a decision. */
  const runCalls = async (calls: LoopCall[], firstResult?: string): Promise<LoopCall[] | null> => {
    // Sequential on purpose: calls of one round may depend on each other's writes on the device.
    for (const [position, call] of calls.entries()) {
      let result: string;
      if (position === 0 && firstResult !== undefined) result = firstResult;
      else if (call.args === undefined) result = `Error: the arguments of ${call.name || 'the tool'} were not valid JSON.`;
      else if (options.mustPark?.(call.name, call.args)) return calls.slice(position);
      else result = await options.executeTool(call.name, call.args);
      toolCalls += 1;
      messages.push(new ToolMessage({ content: result, tool_call_id: call.id, status: result.startsWith('Error:') ? 'error' : 'success' }));
      await options.onToolResult?.(call.name, call.args, result);
    }
    return null;
  };

  let start = 0;
  if (resumed) {
    const left = await runCalls(resumed.calls, options.resume!.result);
    if (left) return { response, toolIterations: resumed.iteration, toolCalls, parked: { messages, calls: left, iteration: resumed.iteration, response, toolCalls } };
    start = resumed.iteration + 1;
  }
  for (let iteration = start; iteration <= max; iteration += 1) {
    const withTools = iteration < max;
    if (!withTools) messages.push(new SystemMessage(WRAP_UP));
    separate = response.length > 0 && !/\s$/.test(response);
    const message = await callModel(options, messages, withTools ? options.tools : [], emit);
    const raw = withTools ? [...(message.tool_calls ?? []), ...(message.invalid_tool_calls ?? [])] : [];
    if (!raw.length) {
      if (!response.trim()) emit(NO_ANSWER);
      return { response, toolIterations: iteration, toolCalls };
    }
    messages.push(new AIMessage({ content: message.content, tool_calls: message.tool_calls, invalid_tool_calls: message.invalid_tool_calls }));
    const calls: LoopCall[] = raw.map((call, position) => ({
      id: call.id ?? `call_${iteration}_${position}`,
      name: call.name ?? '',
      args: 'error' in call && call.error !== undefined ? undefined : call.args,
    }));
    const left = await runCalls(calls);
    if (left) return { response, toolIterations: iteration, toolCalls, parked: { messages, calls: left, iteration, response, toolCalls } };
  }
  // Not reached: the last round offers no tools, so it always returns above.
  return { response, toolIterations: max, toolCalls };
}

/**
 * One streamed model call, on the first model that works: a model that fails before producing
 * text is replaced by the next of `endpoint.models`; once text went out, the failure is final
 * (the user has already seen part of that answer).
 */
async function callModel(options: AgentLoopOptions, messages: BaseMessage[], tools: AssistantTool[], emit: (text: string) => void): Promise<AIMessageChunk> {
  const { endpoint } = options;
  let lastError: unknown;
  for (const model of endpoint.models) {
    let emitted = false;
    try {
      const chat = chatModel(endpoint, model);
      // Never .invoke() these streaming clients: it would fetch tokenizer data from the internet.
      const runnable = tools.length ? chat.bindTools(langchainTools(tools)) : chat;
      let aggregate: AIMessageChunk | undefined;
      for await (const chunk of await runnable.stream(messages, { signal: options.signal })) {
        aggregate = aggregate ? aggregate.concat(chunk) : chunk;
        const text = typeof chunk.content === 'string' ? chunk.content : '';
        if (text) {
          emitted = true;
          emit(text);
        }
      }
      const message = aggregate ?? new AIMessageChunk({ content: '' });
      await options.onModelCall?.({
        provider: endpoint.provider,
        model,
        inputTokens: message.usage_metadata?.input_tokens ?? 0,
        outputTokens: message.usage_metadata?.output_tokens ?? 0,
      });
      return message;
    } catch (error) {
      if (options.signal?.aborted || emitted) throw error;
      lastError = error;
    }
  }
  throw new ModelUnavailableError(lastError, endpoint.models);
}
