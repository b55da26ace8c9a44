import { randomUUID } from 'node:crypto';
import { answer, fromSchema } from '../../src/demo-model/flow-node';
import { startSwitchboard, type RunningSwitchboard } from '../../src/app/switchboard';
import { outputValidator } from '../../src/flows/definition';
import { createLogger } from '../../src/lib/logger';
import { testConfig } from '../support/app';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { registerUser, request } from '../support/http';
import { readSse } from '../support/sse';

/**
 * The offline demo model runs agentflows: `npm start` with no model configured
 * executes a flow end to end through the real client, from the prompts' own words.
 */
describe('agentflows on the offline demo model', () => {
  test('answers node tasks by their first verb, deterministically', () => {
    expect(answer('Summarize: Octopuses have three hearts. They are clever.')).toBe('Summary: Octopuses have three hearts.');
    expect(answer('List three facts about octopuses')).toBe('- Fact 1 about octopuses\n- Fact 2 about octopuses\n- Fact 3 about octopuses');
    expect(answer('List: red, green and blue')).toBe('- red\n- green\n- blue');
    expect(answer('Translate to French: hello world')).toBe('[demo translation to French] hello world');
    expect(answer('Count the words: a b c. d e')).toBe('5 words, 2 sentences, 1 lines');
    expect(answer('Write a title for: the quiet life of deep sea octopuses today')).toBe('The Quiet Life Of Deep Sea');
    expect(answer('Ponder this')).toBe('Demo step result: Ponder this');
    expect(answer('Summarize: x')).toBe(answer('Summarize: x'));
  });

  test('JSON answers validate against the schema they were asked for', () => {
    const schema = {
      type: 'object',
      properties: {
        title: { type: 'string', maxLength: 20 },
        score: { type: 'integer', minimum: 1, maximum: 5 },
        tags: { type: 'array', items: { type: 'string' }, minItems: 1 },
        kind: { enum: ['a', 'b'] },
        ok: { type: 'boolean' },
      },
      required: ['title', 'score', 'tags', 'kind', 'ok'],
      additionalProperties: false,
    };
    const value = fromSchema(schema, 'seven words about the deep blue sea'.split(' '), 0);
    expect(outputValidator(schema).safeParse(value).success).toBe(true);
    expect(value).toMatchObject({ score: 5, kind: 'a', ok: true });
  });

  describe("through npm start's configuration (no model configured)", () => {
    let database: TestDatabase;
    let app: RunningSwitchboard;
    let api: string;

    beforeAll(async () => {
      database = await createTestDatabase();
      const config = testConfig({ keyPrefix: `t-${randomUUID().slice(0, 8)}`, databaseUrl: database.url });
      app = await startSwitchboard(config, { logger: createLogger({ level: 'silent' }) });
      api = `${app.url}/api/v1`;
    });
    afterAll(async () => {
      await app.stop();
      await database.drop();
    });

    test('a three-node agentflow runs offline, its JSON node validated', async () => {
      const user = await registerUser(api, 'Demo');
      const created = await request('POST', `${api}/flows`, {
        token: user.accessToken,
        body: {
          type: 'agentflow',
          name: 'Research brief',
          definition: {
            nodes: [
              { id: 'facts', prompt: 'List three facts about {{input.topic}}' },
              {
                id: 'summary',
                prompt: 'Summarize: {{nodes.facts.output}}',
                dependsOn: ['facts'],
                model: { provider: 'demo', model: 'demo' },
              },
              {
                id: 'card',
                prompt: 'Make a card from: {{nodes.summary.output}}',
                dependsOn: ['summary'],
                outputSchema: {
                  type: 'object',
                  properties: { headline: { type: 'string' }, facts: { type: 'integer' } },
                  required: ['headline', 'facts'],
                },
              },
            ],
            output: 'card',
          },
        },
      });
      expect(created.status).toBe(201);
      const sse = await readSse(`${api}/flows/${created.body.flow.id}/execute/stream`, {
        method: 'POST',
        token: user.accessToken,
        body: { input: { topic: 'octopuses' } },
        timeoutMs: 30_000,
      });
      const byNode = Object.fromEntries(sse.messages.filter((m) => m.event === 'node_completed').map((m) => [m.data.nodeId, m.data]));
      expect(byNode.facts.output).toBe('- Fact 1 about octopuses\n- Fact 2 about octopuses\n- Fact 3 about octopuses');
      expect(byNode.summary.output).toBe('Summary: - Fact 1 about octopuses - Fact 2 about octopuses - Fact 3 about octopuses');
      expect(byNode.card.output).toEqual({ headline: expect.any(String), facts: expect.any(Number) });
      expect(byNode.facts.usage).toMatchObject({ provider: 'demo', model: 'demo' });
      expect(sse.messages.at(-1)).toMatchObject({ event: 'execution_completed', data: { output: byNode.card.output } });
    });
  });
});
