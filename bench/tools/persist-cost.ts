/**
 * A generation's persist, its database part as the worker runs it (the persist lock, the insert of
 * 200 blocks, the row's end with its audit and usage, in one transaction on PGlite in memory),
 * against the floor's raw 200-row insert, run in turns in this process. Prints the median wall time
 * of each, their ratio (steadier than either on a loaded machine) and the process CPU per persist.
 *
 *   node -r ./bench/register.cjs bench/tools/persist-cost.ts [--reps=40]
 */
import { randomUUID } from 'node:crypto';
import { AI_AGENT_USER_ID } from '../../config';
import { createRepositories } from '../../src/models';
import { openDatabase } from '../../src/models/database';
import type { BlockInput } from '../../src/schemas/blocks';
import { FloorDb } from '../lib/floor';
import { paragraph } from '../lib/models';
import { median } from '../lib/stats';
import { msBetween, now } from '../lib/timing';

const BLOCKS = 200;
const REPS = Number(process.argv.find((a) => a.startsWith('--reps='))?.slice(7) ?? '40');
const WARMUPS = 5;

async function main() {
  const inputs: BlockInput[] = Array.from({ length: BLOCKS }, (_, i) => ({ type: 'text', content: { text: paragraph(i) } }));
  const database = await openDatabase({ url: 'memory://', dataDir: '/tmp' });
  const repos = createRepositories(database.db);
  const user = await repos.users.create({ email: `${randomUUID()}@bench.test`, name: 'Bench', passwordHash: 'x' });
  const floor = await FloorDb.start();
  const ours: number[] = [];
  const floors: number[] = [];
  const cpu: number[] = [];
  try {
    for (let rep = 0; rep < WARMUPS + REPS; rep += 1) {
      // A canvas per persist, as full as the benchmark's first generation.
      const canvas = await repos.canvases.create(user!.id, `Persist ${rep}`);
      const id = randomUUID();
      await repos.generations.create({ id, canvasId: canvas.id, userId: user!.id, prompt: 'p', afterId: null });
      const cpu0 = process.cpuUsage();
      const started = now();
      await repos.db.transaction(async (tx) => {
        const count = await repos.blocks.lockForGeneration(tx, canvas.id, id);
        if (count === null) throw new Error('generation gone');
        const inserted = await repos.blocks.insertMany(tx, {
          locked: { count },
          canvasId: canvas.id,
          createdBy: AI_AGENT_USER_ID,
          inputs,
          placement: {},
          generationSessionId: id,
          strict: false,
          maxBlocks: 10_000,
          whenFull: 'truncate',
        });
        await repos.generations.complete(tx, {
          id,
          outcome: {
            blockCount: inserted.length,
            truncated: false,
            provider: 'scripted',
            model: 'scripted',
            inputTokens: 1,
            outputTokens: 1,
            costUsd: 0,
            completedAt: new Date(),
          },
          audit: {
            actorId: AI_AGENT_USER_ID,
            onBehalfOf: user!.id,
            action: 'ai.generation.persisted',
            canvasId: canvas.id,
            targetType: 'generation',
            targetId: id,
            details: { blockCount: inserted.length },
          },
          usage: {
            userId: user!.id,
            generationId: id,
            purpose: 'generation',
            provider: 'scripted',
            model: 'scripted',
            inputTokens: 1,
            outputTokens: 1,
            costUsd: 0,
          },
        });
      });
      const ms = msBetween(started);
      const spent = process.cpuUsage(cpu0);
      const floorMs = await floor.insert(inputs);
      if (rep < WARMUPS) continue;
      ours.push(ms);
      floors.push(floorMs);
      cpu.push((spent.user + spent.system) / 1000);
    }
    const ratio = median(ours.map((value, i) => value / floors[i]));
    console.log(
      JSON.stringify(
        {
          reps: REPS,
          persistP50Ms: Math.round(median(ours) * 100) / 100,
          floorInsertP50Ms: Math.round(median(floors) * 100) / 100,
          pairedRatioP50: Math.round(ratio * 100) / 100,
          persistCpuP50Ms: Math.round(median(cpu) * 100) / 100,
        },
        null,
        2,
      ),
    );
  } finally {
    await floor.close();
    await database.close();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
