import type { ModelGateway, ModelPurpose, ModelRef, ModelTurn, UsageLine } from '../ai/model-gateway';
import type { ToolSpec } from '../ai/model-tools';
import { assistantMessage, systemMessage, toolResultMessage, type ModelMessage } from '../ai/model-messages';
import { TOOLS_BY_NAME, type AssistantTool } from './device-tools';
import { modelTools } from './offered-tools';
import type { BudgetTicket } from '../budget/budget-door';
import { capturedContent, executeToolAttributes } from '../observability/genai';
import { withSpan } from '../observability/tracing';
import { frameUntrusted } from '../lib/untrusted-data';

/** Tool rounds before the model must answer. */
export const MAX_TOOL_ITERATIONS = 5;
/**
 * Calls of one model round that run at the same time; the rest wait for a free place, in call
 * order. It bounds what one turn asks of a device at once (a model may ask for dozens of calls).
 */
export const MAX_PARALLEL_TOOL_CALLS = 4;
/**
 * Calls of one model round that run at all; later ones get an error result without running (nor
 * asking for approval), so a model told to flood (a prompt injection) cannot queue hundreds of
 * device calls or approval requests in one turn.
 */
export const MAX_TOOL_CALLS_PER_ROUND = 10;

const WRAP_UP =
  'You have used every tool step this turn allows. Answer the user now from the tool results above, without calling tools; say what is left undone.';
const NO_ANSWER = 'I could not finish this within the allowed number of steps. Please ask again, more specifically.';
const CANCELLED = 'Error: the turn was cancelled before this call ran.';

export interface ToolLoopOptions {
  models: ModelGateway;
  /** The model the request chose, else the deployment's default. */
  model?: ModelRef;
  /** Usage of every model call is recorded for this account (purpose `chat`). */
  account: { userId: string; tier: string; sessionId?: string };
  /**
   * The usage line of the call that answers (the last, without tool calls) is not written by the
   * gateway but returned (`ToolLoopResult.unrecorded`): the caller writes it with the turn's end.
   */
  leaveAnswerLine?: boolean;
  /** The turn's budget ticket: every model call of the loop is reserved under it. */
  budget?: BudgetTicket;
  /** System prompt, history and the user's message. */
  messages: ModelMessage[];
  tools: Array<AssistantTool | ToolSpec>;
  /** What the model calls are recorded as; `chat` unless said. */
  purpose?: ModelPurpose;
  /**
   * Runs a call and returns its text result; never throws (failures are "Error: …" text). Calls of
   * one round run concurrently (at most {@link MAX_PARALLEL_TOOL_CALLS} at once, started in call order).
   */
  executeTool(name: string, args: unknown, step: string): Promise<string>;
  /** Streamed answer text, in order; the pieces concatenate to the result's `response`. */
  onText(text: string): void;
  /** After each model call (its usage is recorded already, or left to the caller: `leaveAnswerLine`). */
  onModelCall?(usage: ModelTurn['usage']): Promise<void> | void;
  /** After each tool call, once its whole round has finished: in the order of the round's calls. */
  onToolResult?(name: string, args: unknown, result: string): Promise<void> | void;
  maxToolIterations?: number;
  signal?: AbortSignal;
  /**
   * Whether a call must wait for a human (approvals). The round's other calls run, then the
   * loop stops and returns `parked`: the state to resume from once every such call is decided.
   * `taint` lists where the untrusted text the turn has read so far came from (empty: none).
   */
  mustPark?(name: string, args: unknown, taint: readonly string[]): boolean;
  /**
   * Where a call's result comes from when it is untrusted text (device rows, files, fetched pages,
   * MCP answers): the turn is tainted from the next round on. Undefined: the result does not taint.
   */
  taintOf?(name: string, args: unknown): string | undefined;
  /** Tools of our own whose results are instructions, not outside text: they are not framed. */
  trustedResults?: ReadonlySet<string>;
  /**
   * Continues a parked turn: `results` holds the outcome of each call that waited (its tool's
   * result, or a refusal), by its position in `state.calls`.
   */
  resume?: { state: ParkedLoop; results: ReadonlyMap<number, string> };
}

/** One tool call of a model round. */
export interface LoopCall {
  id: string;
  name: string;
  /** undefined when the model sent arguments that were not valid JSON. */
  args: unknown;
  /** Its place in the model round (kept when a parked round resumes with the calls left). */
  index?: number;
  /** Its result, once it ran (or was refused) while another call of the round waited for a decision. */
  result?: string;
}

/** Where a parked turn stopped: everything needed to continue it on any worker. */
export interface ParkedLoop {
  /** The conversation so far, ending with the round's AI message (and, for a turn parked before 0251, results of earlier calls). */
  messages: ModelMessage[];
  /** The round's calls whose results are not in `messages` yet: those with a `result` ran, those without wait. */
  calls: LoopCall[];
  iteration: number;
  response: string;
  toolCalls: number;
  /** Where the untrusted text the turn read came from; absent or empty: it read none. */
  taint?: string[];
}

/** The calls of a parked round that wait for a decision, by position in `calls`. */
export const waitingCalls = (parked: Pick<ParkedLoop, 'calls'>): Array<{ call: LoopCall; position: number }> =>
  parked.calls.flatMap((call, position) => (call.result === undefined ? [{ call, position }] : []));

export interface ToolLoopResult {
  response: string;
  toolIterations: number;
  toolCalls: number;
  /** Set when the turn stopped for approvals; `response` is then the text streamed so far. */
  parked?: ParkedLoop;
  /** With `leaveAnswerLine`: the answering call's usage line, not written yet. */
  unrecorded?: UsageLine;
}

/**
 * Runs `work` for each item, at most `limit` at once, starting them in order; resolves with the
 * results in the items' order. A cancel stops starting new ones (they get `stopped`).
 */
export async function inOrderLimited<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T, position: number) => Promise<R>,
  stopped: (item: T) => R,
  signal?: AbortSignal,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const position = next++;
      results[position] = signal?.aborted ? stopped(items[position]) : await work(items[position], position);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return results;
}

/**
 * The assistant's loop on the model gateway (as the canvas turn): stream the model with
 * the agent's tools bound, run its tool calls on the device, feed the results back, repeat. After
 * `maxToolIterations` rounds the model is called once more WITHOUT tools, so it has to answer.
 *
 * The calls of one round run concurrently; their results go back to the model in the order
 * of the calls, whatever order they finish in. Calls that must wait for a person park the turn once
 * the round's other calls have run: the turn resumes when every one of them is decided.
 */
export async function runToolLoop(options: ToolLoopOptions): Promise<ToolLoopResult> {
  const max = options.maxToolIterations ?? MAX_TOOL_ITERATIONS;
  const resumed = options.resume?.state;
  const messages = [...(resumed?.messages ?? options.messages)];
  let response = resumed?.response ?? '';
  let toolCalls = resumed?.toolCalls ?? 0;
  // The turn is tainted once it has read untrusted text; a park keeps it and a resume goes on with it.
  const taint: string[] = [...(resumed?.taint ?? [])];
  // Text of an earlier round ("Let me check…") and the next round's text are kept apart, in the
  // stream too, so the chunks still concatenate to exactly the response.
  let separate = false;
  const emit = (text: string) => {
    const piece = separate ? `\n\n${text}` : text;
    separate = false;
    response += piece;
    options.onText(piece);
  };

  /**
   * Runs a round's calls concurrently; then feeds every result back in call order. Returns the
   * round (each call with its result, or none while it waits) when some call has to wait for a decision.
   */
  const runCalls = async (calls: LoopCall[], iteration: number, decided?: ReadonlyMap<number, string>): Promise<LoopCall[] | null> => {
    const known = calls.map((call, position): string | undefined => {
      if (call.result !== undefined) return call.result;
      if (decided?.has(position)) return decided.get(position);
      if ((call.index ?? position) >= MAX_TOOL_CALLS_PER_ROUND)
        return `Error: ${call.name || 'this call'} was NOT run: at most ${MAX_TOOL_CALLS_PER_ROUND} tool calls run per turn. Call it again in the next turn if it is still needed.`;
      if (call.args === undefined) return `Error: the arguments of ${call.name || 'the tool'} were not valid JSON.`;
      return undefined;
    });
    const waits = calls.map((call, position) => known[position] === undefined && Boolean(options.mustPark?.(call.name, call.args, taint)));
    const runnable = calls.flatMap((call, position) => (known[position] === undefined && !waits[position] ? [position] : []));
    // `step` names the call within the turn (round, then place in the round), the same on a re-run.
    const ran = await inOrderLimited(
      runnable,
      MAX_PARALLEL_TOOL_CALLS,
      (position) =>
        tracedToolCall(calls[position], () =>
          options.executeTool(calls[position].name, calls[position].args, `${iteration}.${calls[position].index ?? position}`),
        ),
      () => CANCELLED,
      options.signal,
    );
    runnable.forEach((position, i) => (known[position] = ran[i]));
    if (waits.some(Boolean)) return calls.map((call, position) => (waits[position] ? call : { ...call, result: known[position] }));
    for (const [position, call] of calls.entries()) {
      const result = known[position]!;
      toolCalls += 1;
      const failed = result.startsWith('Error:');
      // A result that ran is text from outside: framed as data naming its tool. An "Error:" is our own words.
      const framed = failed || options.trustedResults?.has(call.name) ? result : frameUntrusted(call.name, result);
      messages.push(toolResultMessage(call.id, framed, failed ? 'error' : 'success'));
      const source = failed ? undefined : options.taintOf?.(call.name, call.args);
      if (source && !taint.includes(source)) taint.push(source);
      await options.onToolResult?.(call.name, call.args, result);
    }
    return null;
  };

  let start = 0;
  if (resumed) {
    const left = await runCalls(resumed.calls, resumed.iteration, options.resume!.results);
    if (left)
      return {
        response,
        toolIterations: resumed.iteration,
        toolCalls,
        parked: { messages, calls: left, iteration: resumed.iteration, response, toolCalls, taint: [...taint] },
      };
    start = resumed.iteration + 1;
  }
  for (let iteration = start; iteration <= max; iteration += 1) {
    const withTools = iteration < max;
    if (!withTools) messages.push(systemMessage(WRAP_UP));
    separate = response.length > 0 && !/\s$/.test(response);
    // The calls of a round the loop runs: none in the last round, which offers no tools.
    const callsOf = (turn: Pick<ModelTurn, 'toolCalls'>) => (withTools ? turn.toolCalls : []);
    const turn = await callModel(options, messages, withTools ? options.tools : [], emit, (answer) => callsOf(answer).length === 0);
    const raw = callsOf(turn);
    if (!raw.length) {
      if (!response.trim()) emit(NO_ANSWER);
      return { response, toolIterations: iteration, toolCalls, ...(turn.unrecorded && { unrecorded: turn.unrecorded }) };
    }
    const calls: LoopCall[] = raw.map((call, position) => ({
      id: call.id || `call_${iteration}_${position}`,
      name: call.name,
      args: call.parsed,
      index: position,
    }));
    // The turn's hidden reasoning and its calls' provider fields go back to the model that made them.
    messages.push(
      assistantMessage(
        turn.text,
        raw.map((call, position) => ({ ...call, id: calls[position].id })),
        { model: turn.usage.model, reasoning: turn.reasoning },
      ),
    );
    const left = await runCalls(calls, iteration);
    if (left)
      return {
        response,
        toolIterations: iteration,
        toolCalls,
        parked: { messages, calls: left, iteration, response, toolCalls, taint: [...taint] },
      };
  }
  // Not reached: the last round offers no tools, so it always returns above.
  return { response, toolIterations: max, toolCalls };
}

/**
 * One streamed model call through the gateway: a model that fails before producing text is
 * replaced by the next of the chain; once text went out, the failure is final (the user has
 * already seen part of that answer).
 */
async function callModel(
  options: ToolLoopOptions,
  messages: ModelMessage[],
  tools: Array<AssistantTool | ToolSpec>,
  emit: (text: string) => void,
  answers: (turn: Pick<ModelTurn, 'toolCalls'>) => boolean,
): Promise<ModelTurn> {
  // Cancelled during a tool call: no new model request is opened.
  if (options.signal?.aborted) throw options.signal.reason ?? new Error('The turn was cancelled');
  const turn = await options.models.streamTurn({
    purpose: options.purpose ?? 'chat',
    model: options.model,
    messages,
    tools: tools.length ? modelTools(tools) : undefined,
    signal: options.signal,
    onText: emit,
    account: options.leaveAnswerLine ? { ...options.account, leaveLine: answers } : options.account,
    budget: options.budget,
  });
  await options.onModelCall?.(turn.usage);
  return turn;
}

/**
 * One tool call in an `execute_tool` span (device or HTTP tool): the tool's name and the model's
 * call id; its arguments and result only when content capture is on. The loop's calls and the
 * calls run after an approval both go through here.
 */
export function tracedToolCall(call: { id: string; name: string; args: unknown }, run: () => Promise<string>): Promise<string> {
  // The loops' tools are device tools and, in agentflow nodes, the flow's HTTP tools.
  const kind = TOOLS_BY_NAME.has(call.name) ? 'device' : 'http';
  return withSpan(
    `execute_tool ${call.name}`,
    'internal',
    executeToolAttributes({ name: call.name, callId: call.id, kind, args: call.args }),
    async (span) => {
      const result = await run();
      span?.setAttributes({
        'gen_ai.tool.call.result': capturedContent(result),
        ...(result.startsWith('Error:') ? { 'error.type': 'tool_error' } : {}),
      });
      return result;
    },
  );
}
