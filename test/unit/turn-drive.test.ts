import { TurnEngine, type DrivenTurn, type TurnHooks, type TurnRun } from '../../src/turns/turn-engine';
import { newTestTurn, type ScriptedAnswer } from '../support/test-turn';

/** A leg: its name, and the leg its answer leads to (a plan's next step), if any. */
interface Leg {
  name: string;
  then?: Leg;
}

/**
 * A turn that records what the engine asks of it, over the real tool loop with a scripted model:
 * each leg's loop, then the answer, the park, the cancel or the failure it ends with.
 */
function recordedTurn(
  script: ScriptedAnswer[],
  options: { canPark?: boolean; signal?: AbortSignal; failAt?: 'prepare' | 'finish'; onText?: () => void } = {},
) {
  const t = newTestTurn(script);
  const seen: string[] = [];
  const turn: DrivenTurn<Leg, TurnHooks, string> = {
    agent: { name: 'recorded', conversationId: 'session-1' },
    async prepare(leg) {
      seen.push(`prepare ${leg.name}`);
      if (options.failAt === 'prepare') throw new Error('no tools today');
      const run: TurnRun = {
        canPark: options.canPark ?? false,
        publish: () => options.onText?.(),
        loop: {
          models: t.models,
          account: { userId: 'user-1', tier: 'free' },
          messages: [],
          tools: [],
          signal: options.signal,
          executeTool: t.executeTool,
          mustPark: (name) => name === 'write_file',
        },
      };
      return { hooks: {}, run };
    },
    async answered(leg, result) {
      seen.push(`answered ${leg.name}: ${result.response}`);
      return leg.then ? { next: leg.then } : { response: `${leg.name} done` };
    },
    async finish(leg, response) {
      seen.push(`finish ${leg.name}: ${response}`);
      if (options.failAt === 'finish') throw new Error('the store is down');
      return 'finished';
    },
    async park(leg, outcome) {
      seen.push(`park ${leg.name}: ${outcome.result.parked.calls.length} calls`);
      return 'parked';
    },
    async cancelled(leg, outcome) {
      seen.push(`cancelled ${leg.name}: ${outcome.streamed}`);
      return 'cancelled';
    },
    async failed(leg, error) {
      seen.push(`failed ${leg.name}: ${(error as Error).message}`);
      return 'failed';
    },
  };
  return { t, seen, turn };
}

describe('the turn engine drives a turn leg by leg', () => {
  test("an answered leg leads to the next (a plan's step); the last one's answer finishes the turn", async () => {
    const { seen, turn } = recordedTurn([{ text: 'Planned.' }, { text: 'Wrote it.' }]);
    const end = await new TurnEngine().drive(turn, { name: 'orchestrator', then: { name: 'coder' } });
    expect(end).toBe('finished');
    expect(seen).toEqual([
      'prepare orchestrator',
      'answered orchestrator: Planned.',
      'prepare coder',
      'answered coder: Wrote it.',
      'finish coder: coder done',
    ]);
  });

  test('a round that needs a person parks the turn where it is; no later leg runs', async () => {
    const { seen, turn, t } = recordedTurn([{ calls: [{ name: 'write_file', args: { path: 'a.js' } }] }], { canPark: true });
    const end = await new TurnEngine().drive(turn, { name: 'coder', then: { name: 'debug' } });
    expect(end).toBe('parked');
    expect(seen).toEqual(['prepare coder', 'park coder: 1 calls']);
    expect(t.ran).toEqual([]);
  });

  test('a cancel during a leg ends the turn cancelled with what was streamed', async () => {
    const cancel = new AbortController();
    // The person cancels once the first words reached them.
    const { seen, turn } = recordedTurn([{ streamsUntilCancelled: 'Half an ans' }], {
      signal: cancel.signal,
      onText: () => cancel.abort(new Error('cancelled by the user')),
    });
    await expect(new TurnEngine().drive(turn, { name: 'ask' })).resolves.toBe('cancelled');
    expect(seen).toEqual(['prepare ask', 'cancelled ask: Half an ans']);
  });

  test('a failure anywhere on the way is handed to the turn once, with the leg it happened in', async () => {
    const early = recordedTurn([], { failAt: 'prepare' });
    await expect(new TurnEngine().drive(early.turn, { name: 'coder' })).resolves.toBe('failed');
    expect(early.seen).toEqual(['prepare coder', 'failed coder: no tools today']);

    const late = recordedTurn([{ text: 'Done.' }], { failAt: 'finish' });
    await expect(new TurnEngine().drive(late.turn, { name: 'ask' })).resolves.toBe('failed');
    expect(late.seen).toEqual(['prepare ask', 'answered ask: Done.', 'finish ask: ask done', 'failed ask: the store is down']);
  });
});
