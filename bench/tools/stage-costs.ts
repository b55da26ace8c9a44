/**
 * Isolated costs of the steps of one 200-block generation, each measured alone in this process
 * (PGlite in memory, the zero-latency scripted model): evidence for docs/performance.md.
 *
 *   node -r ./bench/register.cjs bench/tools/stage-costs.ts
 */
import { randomUUID } from 'node:crypto';
import { AIMessage, HumanMessage, SystemMessage, ToolMessage } from '@langchain/core/messages';
import { AI_AGENT_USER_ID } from '../../config';
import { blockTools } from '../../src/ai/block-tools';
import { chatModel } from './chat-openai';
import { createRepositories } from '../../src/models';
import { openDatabase } from '../../src/models/database';
import type { BlockInput } from '../../src/schemas/blocks';
import { FloorDb } from '../lib/floor';
import { paragraph, startBulkModel } from '../lib/models';
import { median } from '../lib/stats';
import { msBetween, now } from '../lib/timing';

const BLOCKS = 200;
const REPS = 15;

async function time(name: string, run: () => Promise<unknown>, reps = REPS) {
  const samples: number[] = [];
  for (let i = 0; i < reps + 3; i += 1) {
    const started = now();
    await run();
    if (i >= 3) samples.push(msBetween(started));
  }
  console.log(`${median(samples).toFixed(2).padStart(9)} ms  ${name}`);
}

async function main() {
  const inputs: BlockInput[] = Array.from({ length: BLOCKS }, (_, i) => ({ type: 'text', content: { text: paragraph(i) } }));
  const database = await openDatabase({ url: 'memory://', dataDir: '/tmp' });
  const repos = createRepositories(database.db);
  const user = await repos.users.create({ email: `${randomUUID()}@bench.test`, name: 'Bench', passwordHash: 'x' });
  const canvas = await repos.canvases.create(user!.id, 'Costs');
  const floor = await FloorDb.start();
  const model = await startBulkModel(BLOCKS);
  try {
    console.log(`isolated step costs, ${BLOCKS} blocks, median of ${REPS} after 3 warm-ups`);
    await time('floor: raw multi-row insert of 200 rows in one transaction (PGlite)', () => floor.insert(inputs));
    const generations: string[] = [];
    await time("persist: the runner's transaction (lock, insertMany, update, audit, usage)", async () => {
      const id = randomUUID();
      generations.push(id);
      await repos.generations.create({ id, canvasId: canvas.id, userId: user!.id, prompt: 'p', afterId: null });
      await repos.db.transaction(async (tx) => {
        await repos.generations.lock(id, tx);
        const inserted = await repos.blocks.insertMany(tx, {
          canvasId: canvas.id,
          createdBy: AI_AGENT_USER_ID,
          inputs,
          placement: {},
          generationSessionId: id,
          strict: false,
        });
        await repos.generations.update(id, { status: 'completed', blockCount: inserted.length }, tx);
        await repos.audit.write(
          {
            actorId: AI_AGENT_USER_ID,
            action: 'ai.generation.persisted',
            canvasId: canvas.id,
            targetType: 'generation',
            targetId: id,
            details: {},
          },
          tx,
        );
        await repos.usage.record(
          {
            userId: user!.id,
            generationId: id,
            purpose: 'generation',
            provider: 'p',
            model: 'm',
            inputTokens: 1,
            outputTokens: 1,
            costUsd: 0,
          },
          tx,
        );
      });
    });
    await time('persist: insertMany alone (drizzle builds and maps 200 rows)', () =>
      repos.db.transaction((tx) =>
        repos.blocks.insertMany(tx, {
          canvasId: canvas.id,
          createdBy: AI_AGENT_USER_ID,
          inputs,
          placement: {},
          generationSessionId: randomUUID(),
          strict: false,
        }),
      ),
    );
    let next = 0;
    await time('broadcast: generations.find + blocks.listByGeneration (200 rows)', async () => {
      const id = generations[next++ % generations.length];
      await repos.generations.find(id);
      await repos.blocks.listByGeneration(id);
    });

    const chat = chatModel(model.endpoint, 'scripted');
    await time('agent: ChatOpenAI tool conversion, 10 requests (invocationParams with the 8 zod tools; a suspect ruled out)', async () => {
      for (let i = 0; i < 10; i += 1)
        (chat as unknown as { invocationParams(o: unknown): unknown }).invocationParams({ tools: blockTools });
    });
    const calls = inputs.map((input, i) => ({ id: `call_${i}`, name: 'create_text', args: input.content, type: 'tool_call' as const }));
    const turn2 = [
      new SystemMessage('bench'),
      new HumanMessage('Write paragraphs'),
      new AIMessage({ content: '', tool_calls: calls }),
      ...calls.map((call) => new ToolMessage({ content: 'ok', tool_call_id: call.id, status: 'success' })),
    ];
    const bound = chat.bindTools(blockTools);
    await time('agent: model turn 2 (request with 200 tool calls + 200 results, streamed text answer)', async () => {
      for await (const chunk of await bound.stream(turn2)) void chunk;
    });
  } finally {
    await model.close();
    await floor.close();
    await database.close();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
