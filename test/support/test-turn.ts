import { ModelCallCancelled, type ModelGateway, type ModelTurn, type ModelTurnRequest } from '../../src/ai/model-gateway';
import type { HitlRequestRow } from '../../src/models/schema';
import type { ApprovalService } from '../../src/turns/approvals';
import { runToolLoop, type ToolLoopOptions } from '../../src/turns/tool-loop';
import type { TurnUsage } from '../../src/turns/turn-events';

/*
 * A tool-using turn on in-memory fakes of the turn layer's ports: a scripted model gateway, a
 * device that records what it runs, approvals kept in a map (the requests a park writes, the
 * decisions a person takes, the claim a resume makes) and the turn's event log as an array. No
 * server, Redis or database: each test drives the real tool loop and parking protocol in
 * milliseconds. Only our own ports are faked; the code under test is the code that ships.
 */

/**
 * One scripted model answer: text, tool calls (name and arguments), or text that streams and then
 * waits until the call is cancelled (a turn still answering when a cancel comes).
 */
export type ScriptedAnswer =
  { text: string } | { calls: Array<{ name: string; args: Record<string, unknown> }> } | { streamsUntilCancelled: string };

export interface TestTurn {
  /** The gateway's port: answers each call with the next scripted answer, and keeps the requests. */
  models: ModelGateway;
  requests: ModelTurnRequest[];
  /** The device: every call it ran, by tool name and arguments. */
  ran: Array<{ name: string; args: unknown }>;
  executeTool: (name: string, args: unknown) => Promise<string>;
  /** The approvals' port and the requests it holds (the `hitl_requests` rows, in memory). */
  approvals: Pick<ApprovalService, 'allow' | 'request'>;
  hitl: { listForMessage(messageId: string): Promise<HitlRequestRow[]>; markResumedAll(ids: string[]): Promise<string[]> };
  rows: HitlRequestRow[];
  /** A person decides a request. */
  decide(id: string, status: 'approved' | 'rejected' | 'timeout'): HitlRequestRow;
  /** The turn's event log. */
  events: Array<Record<string, unknown>>;
  usage: TurnUsage;
  /** The real tool loop over these fakes; `options` overrides. */
  loop(options: Partial<ToolLoopOptions>): ReturnType<typeof runToolLoop>;
}

const USAGE = { provider: 'test', model: 'scripted', inputTokens: 1, outputTokens: 1, costUsd: 0 };

export function newTestTurn(
  script: ScriptedAnswer[],
  device: (name: string, args: unknown) => string = (name) => `${name} done`,
): TestTurn {
  const answers = [...script];
  const requests: ModelTurnRequest[] = [];
  const ran: TestTurn['ran'] = [];
  const rows: HitlRequestRow[] = [];
  const events: TestTurn['events'] = [];
  let calls = 0;
  const models = {
    async streamTurn(request: ModelTurnRequest): Promise<ModelTurn> {
      requests.push(request);
      if (request.signal?.aborted) throw request.signal.reason ?? new Error('cancelled');
      const answer = answers.shift();
      if (!answer) throw new Error('the script has no answer left');
      if ('streamsUntilCancelled' in answer) {
        request.onText?.(answer.streamsUntilCancelled);
        const signal = request.signal;
        if (!signal) throw new Error('a call that waits for its cancel needs a signal');
        // The gateway's own ending of a cut-short call: its usage so far, as a ModelCallCancelled.
        await new Promise((resolve) => (signal.aborted ? resolve(undefined) : signal.addEventListener('abort', resolve, { once: true })));
        throw new ModelCallCancelled({ ...USAGE, estimated: false }, signal.reason);
      }
      if ('text' in answer) request.onText?.(answer.text);
      const toolCalls =
        'calls' in answer
          ? answer.calls.map(({ name, args }) => ({ id: `call-${(calls += 1)}`, name, args: JSON.stringify(args), parsed: args }))
          : [];
      return { text: 'text' in answer ? answer.text : '', toolCalls, usage: USAGE, spent: [USAGE] } as unknown as ModelTurn;
    },
    defaultModel: { provider: 'test', model: 'scripted' },
  } as unknown as ModelGateway;
  const executeTool = async (name: string, args: unknown) => {
    ran.push({ name, args });
    return device(name, args);
  };
  const approvals: TestTurn['approvals'] = {
    allow: async () => undefined,
    request: async (request) => {
      const row = {
        id: `approval-${rows.length + 1}`,
        userId: request.userId,
        sessionId: 'sessionId' in request ? request.sessionId : null,
        executionId: 'executionId' in request ? request.executionId : null,
        messageId: request.messageId,
        deviceId: request.deviceId,
        toolName: request.toolName,
        parameters: request.parameters,
        reason: 'test',
        status: 'pending',
        continuation: request.continuation,
        expiresAt: new Date(Date.now() + 60_000),
        resumedAt: null,
      } as unknown as HitlRequestRow;
      rows.push(row);
      events.push({ type: 'approval_requested', approvalId: row.id, tool: row.toolName });
      return row;
    },
  };
  const hitl: TestTurn['hitl'] = {
    listForMessage: async (messageId) => rows.filter((row) => row.messageId === messageId),
    markResumedAll: async (ids) =>
      rows
        .filter((row) => ids.includes(row.id) && !row.resumedAt)
        .map((row) => {
          row.resumedAt = new Date();
          return row.id;
        }),
  };
  const decide = (id: string, status: 'approved' | 'rejected' | 'timeout') => {
    const row = rows.find((candidate) => candidate.id === id)!;
    row.status = status;
    events.push({ type: 'approval_resolved', approvalId: id, status });
    return row;
  };
  const usage: TurnUsage = { provider: 'test', model: 'scripted', inputTokens: 0, outputTokens: 0, costUsd: 0 };
  const loop = (options: Partial<ToolLoopOptions>) =>
    runToolLoop({
      models,
      account: { userId: 'user-1', tier: 'free' },
      messages: [],
      tools: [],
      executeTool,
      onText: (text) => void events.push({ type: 'text_chunk', text }),
      ...options,
    });
  return { models, requests, ran, executeTool, approvals, hitl, rows, decide, events, usage, loop };
}
