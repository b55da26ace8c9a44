import { startOpenAICompatibleServer } from '../../src/demo-model/openai-compatible-server';
import { createTestDatabase } from '../../test/support/database';
import { createCanvas, registerUser } from '../../test/support/http';
import { loggedAt, spawnSwitchboard, type SwitchboardProcess } from '../../test/support/processes';
import { readSse } from '../../test/support/sse';
import type { BenchContext } from '../lib/context';
import { benchEnv, uniquePrefix } from '../lib/harness';
import { round, summarize } from '../lib/stats';

export interface RecoveryOptions {
  /** Generations whose worker is killed, one after the other. */
  runs: number;
  /** Tool calls the model streams per generation, `delayMs` apart: the kill lands in the middle. */
  calls: number;
  delayMs: number;
}

/**
 * Crash recovery (target under 15 s): kill -9 of the worker process running a generation, then the
 * time until a surviving worker starts it again (its `generation started` log line, read from the
 * line's own time) and until the client's stream completes. An API process and two worker
 * processes as deployed, default job lock and worker lease; a replacement worker is started after
 * each run so the next one has two again.
 */
export async function recoveryScenario(ctx: BenchContext, options: RecoveryOptions) {
  const database = await createTestDatabase({ server: ctx.postgresUrl });
  const model = await startOpenAICompatibleServer({
    delayMs: options.delayMs,
    responder: () => ({
      toolCalls: Array.from({ length: options.calls }, (_, i) => ({ name: 'create_text', args: { text: `paragraph ${i}` } })),
    }),
  });
  const processes: SwitchboardProcess[] = [];
  try {
    const shared = {
      ...benchEnv({ redis: ctx.redis, keyPrefix: uniquePrefix('recovery'), dataDir: ctx.dataDir }),
      DATABASE_URL: database.url,
      OPENAI_BASE_URL: model.baseURL,
      OPENAI_API_KEY: 'bench',
      LLM_MODEL: 'scripted',
      LLM_PROVIDER: 'scripted',
    };
    const worker = () => spawnSwitchboard({ ...shared, SWITCHBOARD_ROLES: 'worker', LOG_LEVEL: 'info' }, 60_000);
    ctx.log('recovery: starting an API process and two worker processes');
    const [api, ...workers] = await Promise.all([spawnSwitchboard({ ...shared, SWITCHBOARD_ROLES: 'api' }, 60_000), worker(), worker()]);
    processes.push(api, ...workers);
    const base = `${api.url}/api/v1`;
    const user = await registerUser(base, 'Recovery');
    const canvasId = await createCanvas(base, user, 'Recovery canvas');

    const toResumed: number[] = [];
    const toCompleted: number[] = [];
    for (let run = 0; run < options.runs; run += 1) {
      let killed: SwitchboardProcess | undefined;
      let killedAt = 0;
      let generationId = '';
      const sse = await readSse(`${base}/canvases/${canvasId}/ai/generate-stream`, {
        method: 'POST',
        token: user.accessToken,
        body: { prompt: `Write paragraphs [run:recovery-${run}]` },
        timeoutMs: 120_000,
        until: (m) => m.event === 'complete' || m.event === 'error',
        onMessage: (message) => {
          if (killed || message.event !== 'tool_output') return;
          generationId = message.data.generationId;
          killed = workers.find((w) => w.output().includes('generation started') && w.output().includes(generationId));
          killed?.child.kill('SIGKILL');
          if (killed) killedAt = Date.now();
        },
      });
      const completedAt = Date.now();
      if (!killed) throw new Error('recovery: no worker had logged the generation start at its first block');
      if (sse.messages.at(-1)?.event !== 'complete') throw new Error(`recovery: the generation ended ${sse.messages.at(-1)?.event}`);
      const survivor = workers.find((w) => w !== killed)!;
      const resumedAt = loggedAt(survivor, ['generation started', generationId], killedAt);
      if (resumedAt === undefined) throw new Error('recovery: the surviving worker never logged the generation started again');
      toResumed.push(resumedAt - killedAt);
      toCompleted.push(completedAt - killedAt);
      ctx.log(`recovery: run ${run + 1}: resumed ${resumedAt - killedAt} ms after kill -9, completed after ${completedAt - killedAt} ms`);
      // Two workers again for the next run.
      workers.splice(workers.indexOf(killed), 1);
      const replacement = await worker();
      workers.push(replacement);
      processes.push(replacement);
    }
    const resumed = summarize(toResumed, 0);
    const completed = summarize(toCompleted, 0);
    return {
      config: {
        runs: options.runs,
        modelCalls: options.calls,
        modelDelayMs: options.delayMs,
        processes:
          'one API process, two worker processes (default WORKER_LOCK_MS and WORKER_LEASE_MS); the one running the generation is killed at its first block',
      },
      samples: toResumed.length,
      killToResumedMs: { p50: resumed.p50, max: round(Math.max(...toResumed), 0) },
      killToCompletedMs: { p50: completed.p50, max: round(Math.max(...toCompleted), 0) },
    };
  } finally {
    await Promise.all(processes.map((p) => p.stop('SIGKILL')));
    await model.close();
    await database.drop();
  }
}
