import { asksByContract } from '../../src/turns/tool-contract';
import { claimRound, decidedResults, parkRound } from '../../src/turns/parking';
import { toolRisk } from '../../src/turns/tool-risk';
import type { ParkedLoop } from '../../src/turns/tool-loop';
import { TurnEngine, type TurnRun } from '../../src/turns/turn-engine';
import { codingTurnSpec, afterCodingAnswer } from '../../src/coding/coding-turn';
import { planLane, strategyOf } from '../../src/assistant/chat-lane';
import { historyMessages, userMessage } from '../../src/ai/model-messages';
import { newTestTurn } from '../support/test-turn';

const owner = { userId: 'user-1', sessionId: 'session-1', messageId: 'message-1' };
const write = { name: 'write_file', args: { path: 'src/a.js', content: 'export const a = 1;\n' } };

/** Parks whatever the loop leaves waiting, as the chat turn does: one request per waiting call. */
async function park(t: ReturnType<typeof newTestTurn>, parked: ParkedLoop | undefined, plan?: unknown) {
  expect(parked).toBeDefined();
  return parkRound(
    t.approvals,
    owner,
    parked!,
    { toolsets: ['code_read', 'code_write'], usage: t.usage, codingAgent: 'coder', plan },
    (call) => ({
      deviceId: 'device-1',
      parameters: call.args as Record<string, unknown>,
    }),
  );
}

describe('the turn engine on fakes of its ports', () => {
  test('a coding plan step parks on a write, is approved, resumes from the stored state and answers', async () => {
    const t = newTestTurn([{ calls: [{ name: 'read_file', args: { path: 'src/a.js' } }, write] }, { text: 'Wrote src/a.js.' }]);
    const plan = {
      request: 'make a',
      preface: 'Two steps.',
      steps: [{ agent: 'architect' }, { agent: 'coder' }],
      index: 1,
      answers: ['Designed.'],
    };
    const first = await t.loop({
      tools: [],
      mustPark: (name) => asksByContract(name),
      taintOf: (name) => (toolRisk(name) === 'read' ? `${name} on the device` : undefined),
    });
    // The read ran at once; the write waits, and nothing of it reached the device.
    expect(t.ran.map((call) => call.name)).toEqual(['read_file']);
    const [request] = await park(t, first.parked, plan);
    expect(t.rows).toHaveLength(1);
    expect(request).toMatchObject({ toolName: 'write_file', status: 'pending' });
    // Not decided yet: no resume claims the round.
    expect(await claimRound(t.hitl, request, false)).toBeUndefined();

    t.decide(request.id, 'approved');
    const round = await claimRound(t.hitl, request, false);
    expect(round).toMatchObject({ codingAgent: 'coder', plan, toolsets: ['code_read', 'code_write'] });
    const results = await decidedResults(
      round!,
      (call) => t.executeTool(call.name, call.args),
      async (call) => `Error: ${call.name} refused`,
      (call) => `Error: ${call.name} cancelled`,
    );
    expect(results).toEqual(new Map([[1, 'write_file done']]));
    const resumed = await t.loop({ resume: { state: round!.parked, results } });
    expect(resumed).toMatchObject({ response: 'Wrote src/a.js.' });
    expect(resumed.parked).toBeUndefined();
    expect(t.ran.map((call) => call.name)).toEqual(['read_file', 'write_file']);
    // The resumed call reached the model as its result, after the stored conversation.
    expect(JSON.stringify(t.requests[1].messages)).toContain('write_file done');
    // A second resume of the same round (a sibling's decision, a re-queued job) does nothing.
    expect(await claimRound(t.hitl, request, false)).toBeUndefined();
  });

  test('a cancel during the wait runs none of the approved calls', async () => {
    const t = newTestTurn([{ calls: [write, { name: 'execute_command', args: { command: 'npm test' } }] }]);
    const first = await t.loop({ mustPark: (name) => asksByContract(name) });
    const requests = await park(t, first.parked);
    expect(requests.map((row) => row.toolName)).toEqual(['write_file', 'execute_command']);
    for (const row of requests) t.decide(row.id, 'approved');
    const round = await claimRound(t.hitl, requests[1], false);
    const cancel = new AbortController();
    cancel.abort(new Error('cancelled by the user'));
    const results = await decidedResults(
      round!,
      (call) => t.executeTool(call.name, call.args),
      async (call) => `Error: ${call.name} refused`,
      (call) => `Error: ${call.name} was NOT run: the turn was cancelled.`,
      cancel.signal,
    );
    expect([...results.values()]).toEqual([
      'Error: write_file was NOT run: the turn was cancelled.',
      'Error: execute_command was NOT run: the turn was cancelled.',
    ]);
    expect(t.ran).toEqual([]);
    // The loop opens no model call for a cancelled turn.
    await expect(t.loop({ resume: { state: round!.parked, results }, signal: cancel.signal })).rejects.toThrow('cancelled by the user');
    expect(t.requests).toHaveLength(1);
  });

  test('an MCP call the person refuses never reaches the server, and the model reads the refusal', async () => {
    const mcpCall = { name: 'mcp__docs__delete_page', args: { id: 'p1' } };
    const t = newTestTurn([{ calls: [mcpCall] }, { text: 'The page was not deleted.' }]);
    const first = await t.loop({ mustPark: (name) => toolRisk(name) !== 'read' });
    const [request] = await parkRound(t.approvals, owner, first.parked!, { toolsets: [], usage: t.usage }, () => ({
      deviceId: 'mcp:docs',
      parameters: mcpCall.args,
    }));
    expect(request).toMatchObject({ deviceId: 'mcp:docs', toolName: 'mcp__docs__delete_page' });
    t.decide(request.id, 'rejected');
    const round = await claimRound(t.hitl, request, false);
    const results = await decidedResults(
      round!,
      (call) => t.executeTool(call.name, call.args),
      async (call, decision) => `Error: the user ${decision.status} ${call.name}; it was NOT run.`,
      (call) => `Error: ${call.name} cancelled`,
    );
    const resumed = await t.loop({ resume: { state: round!.parked, results } });
    expect(t.ran).toEqual([]);
    expect(resumed.response).toBe('The page was not deleted.');
    expect(JSON.stringify(t.requests[1].messages)).toContain('the user rejected mcp__docs__delete_page; it was NOT run.');
  });

  test('a crashed resume re-run goes on with a round it had already claimed', async () => {
    const t = newTestTurn([{ calls: [write] }]);
    const first = await t.loop({ mustPark: (name) => asksByContract(name) });
    const [request] = await park(t, first.parked);
    t.decide(request.id, 'approved');
    expect(await claimRound(t.hitl, request, false)).toBeDefined();
    expect(await claimRound(t.hitl, request, false)).toBeUndefined();
    expect(await claimRound(t.hitl, request, true)).toBeDefined();
  });

  /** A chat session's lane in memory: its stored messages and its open turns, as the chat repository keeps them. */
  function lane() {
    const stored: Array<{ role: string; content: string; turn: string }> = [];
    const open: string[] = [];
    return { stored, open };
  }

  /** One chat turn through the engine: the session's history, its message, its stream as an array. */
  function chatTurn(t: ReturnType<typeof newTestTurn>, history: Array<{ role: string; content: string }>, text: string) {
    const chunks: string[] = [];
    const cancel = new AbortController();
    const run: TurnRun = {
      canPark: false,
      publish: (piece) => void chunks.push(piece),
      loop: {
        models: t.models,
        account: { userId: 'user-1', tier: 'free' },
        messages: [...historyMessages(history), userMessage(text)],
        tools: [],
        executeTool: t.executeTool,
        signal: cancel.signal,
      },
    };
    return { chunks, cancel, outcome: new TurnEngine().run({}, run) };
  }

  test.each([
    ['interrupt', true],
    ['rollback', false],
  ] as const)('a second message under %s cancels the running turn; the next turn sees what it said: %s', async (strategy, seesIt) => {
    const t = newTestTurn([{ streamsUntilCancelled: 'The first half of an answer' }, { text: 'Answering the second message.' }]);
    const session = lane();
    session.stored.push({ role: 'user', content: 'first question', turn: 'a' });
    session.open.push('a');
    const first = chatTurn(t, [], 'first question');
    // The first turn is streaming when the second message comes.
    await new Promise<void>((resolve) => (t.requests.length ? resolve() : setImmediate(resolve)));
    expect(first.chunks).toEqual(['The first half of an answer']);

    const plan = planLane(strategyOf(strategy, 'enqueue'), session.open.length);
    expect(plan).toEqual({ refuse: false, cancel: strategy, behind: true });
    // The lane cancels the running turn: the engine ends it cancelled, with what the person saw.
    first.cancel.abort(new Error('interrupted by a newer message'));
    const ended = await first.outcome;
    expect(ended).toMatchObject({ type: 'cancelled', streamed: 'The first half of an answer' });
    // The turn's end keeps its words (interrupt) or removes the turn's messages (rollback).
    if (plan.cancel === 'interrupt')
      session.stored.push({ role: 'assistant', content: ended.type === 'cancelled' ? ended.streamed : '', turn: 'a' });
    else session.stored.splice(0, session.stored.length, ...session.stored.filter((message) => message.turn !== 'a'));
    session.open.shift();

    // The second message's turn is due now: it runs after, on the session as the first left it.
    expect(planLane(strategy, session.open.length)).toEqual({ refuse: false, cancel: 'none', behind: false });
    const second = chatTurn(t, session.stored, 'second message');
    await expect(second.outcome).resolves.toMatchObject({ type: 'answered', result: { response: 'Answering the second message.' } });
    const sent = JSON.stringify(t.requests[1].messages);
    expect(sent.includes('The first half of an answer')).toBe(seesIt);
    expect(sent.includes('first question')).toBe(seesIt);
    expect(second.chunks).toEqual(['Answering the second message.']);
  });

  test("the coding turn's spec offers the Orchestrator its plan tool, and the plan runs after the answer", async () => {
    const steps = [
      { agent: 'coder', task: 'write a' },
      { agent: 'debug', task: 'test a' },
    ];
    const t = newTestTurn([{ calls: [{ name: 'plan_steps', args: { steps } }] }, { text: 'Two steps: write, then test.' }]);
    const engine = new TurnEngine().register(codingTurnSpec);
    const context = { agent: 'orchestrator' as const, request: 'make a', approvalLimit: async () => null, log: console as never };
    const hooks = codingTurnSpec.open(context);
    expect(() => engine.register(codingTurnSpec)).toThrow('registered already');
    const outcome = await engine.run(hooks, {
      canPark: false,
      publish: () => undefined,
      loop: { models: t.models, account: { userId: 'user-1', tier: 'free' }, messages: [], tools: [], executeTool: t.executeTool },
    });
    expect(outcome).toMatchObject({ type: 'answered', result: { response: 'Two steps: write, then test.' } });
    // The plan tool ran in the server, not on the device.
    expect(t.ran).toEqual([]);
    expect(t.requests[0].tools?.map((tool) => (tool as { name?: string }).name)).toEqual(['plan_steps']);
    const after = afterCodingAnswer(context, 'Two steps: write, then test.', hooks.proposed());
    expect(after).toEqual({
      note: undefined,
      plan: { request: 'make a', preface: 'Two steps: write, then test.', steps, index: -1, answers: [] },
    });
    // A coder (not the Orchestrator) is offered no plan tool, and its answer adds nothing after it.
    expect(codingTurnSpec.open({ ...context, agent: 'coder' }).serverTools).toEqual([]);
  });
});
