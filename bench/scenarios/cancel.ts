import { createParser } from 'eventsource-parser';
import { startOpenAICompatibleServer, type OpenAICompatibleServer } from '../../src/demo-model/openai-compatible-server';
import { createTestDatabase } from '../../test/support/database';
import { createCanvas, registerUser, type TestUser } from '../../test/support/http';
import { spawnSwitchboard, type SwitchboardProcess } from '../../test/support/processes';
import type { BenchContext } from '../lib/context';
import { benchEnv, uniquePrefix } from '../lib/harness';
import { round, summarize } from '../lib/stats';
import { msBetween, now, withTimeout, type Stamp } from '../lib/timing';

export interface CancelOptions {
  /** Measured cancels (after `warmups`). */
  runs: number;
  warmups: number;
  /** Tool calls the model would stream; the cancel comes long before the end. */
  calls: number;
  /** Pause before each streamed tool call (the model "thinking"). */
  delayMs: number;
  /** The cancel is sent when this many blocks have reached the client. */
  cancelAfterBlocks: number;
}

/**
 * Cancel latency (target p95 ≤ 500 ms): cancel → terminal `cancelled` at the client, while the model streams. Three
 * processes as deployed: the client streams from API node A, a worker process streams the model,
 * and the cancel is POSTed to API node B, so the signal crosses Redis (pub/sub) to the worker,
 * which aborts the model request and writes the terminal event that node A relays.
 */
export async function cancelScenario(ctx: BenchContext, options: CancelOptions) {
  const database = await createTestDatabase({ server: ctx.postgresUrl });
  const model = await startOpenAICompatibleServer({
    recordRequests: true,
    delayMs: options.delayMs,
    responder: () => ({
      toolCalls: Array.from({ length: options.calls }, (_, i) => ({ name: 'create_text', args: { text: `paragraph ${i}` } })),
    }),
  });
  const processes: SwitchboardProcess[] = [];
  try {
    const shared = {
      ...benchEnv({ redis: ctx.redis, keyPrefix: uniquePrefix('cancel'), dataDir: ctx.dataDir }),
      DATABASE_URL: database.url,
      OPENAI_BASE_URL: model.baseURL,
      OPENAI_API_KEY: 'bench',
      LLM_MODEL: 'scripted',
      LLM_PROVIDER: 'scripted',
    };
    ctx.log('cancel: starting API nodes A and B and a worker process');
    const [nodeA, nodeB, worker] = await Promise.all([
      spawnSwitchboard({ ...shared, SWITCHBOARD_ROLES: 'api' }, 60_000),
      spawnSwitchboard({ ...shared, SWITCHBOARD_ROLES: 'api' }, 60_000),
      spawnSwitchboard({ ...shared, SWITCHBOARD_ROLES: 'worker' }, 60_000),
    ]);
    processes.push(nodeA, nodeB, worker);
    const apiA = `${nodeA.url}/api/v1`;
    const apiB = `${nodeB.url}/api/v1`;
    const user = await registerUser(apiA, 'Canceller');
    const canvasId = await createCanvas(apiA, user, 'Cancel canvas');

    const toCancelled: number[] = [];
    const toAccepted: number[] = [];
    const toModelClosed: number[] = [];
    let blocksBefore = 0;
    for (let run = 0; run < options.warmups + options.runs; run += 1) {
      const sample = await cancelOnce(apiA, apiB, user, canvasId, model, options);
      if (run < options.warmups) continue;
      toCancelled.push(sample.toCancelledMs);
      toAccepted.push(sample.toAcceptedMs);
      if (sample.toModelClosedMs !== undefined) toModelClosed.push(sample.toModelClosedMs);
      blocksBefore += sample.blocks;
    }
    const cancelled = summarize(toCancelled);
    return {
      config: {
        runs: options.runs,
        warmups: options.warmups,
        modelCalls: options.calls,
        modelDelayMs: options.delayMs,
        cancelAfterBlocks: options.cancelAfterBlocks,
        processes:
          'client streams from API node A; POST …/cancel to API node B; the model streamed by a worker process (SWITCHBOARD_ROLES=api, api, worker)',
      },
      samples: toCancelled.length,
      cancelToCancelledMs: { p50: cancelled.p50, p95: cancelled.p95, p99: cancelled.p99, max: cancelled.max },
      cancelTo202Ms: { p50: summarize(toAccepted).p50, p95: summarize(toAccepted).p95 },
      // Date.now() resolution (the model server stamps the close with it).
      cancelToModelConnectionClosedMs: toModelClosed.length
        ? { p50: summarize(toModelClosed).p50, p95: summarize(toModelClosed).p95 }
        : null,
      meanBlocksStreamedBeforeTheStop: round(blocksBefore / Math.max(1, options.runs), 1),
    };
  } finally {
    await Promise.all(processes.map((p) => p.stop('SIGKILL')));
    await model.close();
    await database.drop();
  }
}

/** One generation on node A, cancelled on node B once `cancelAfterBlocks` blocks arrived. */
async function cancelOnce(
  apiA: string,
  apiB: string,
  user: TestUser,
  canvasId: string,
  model: OpenAICompatibleServer,
  options: CancelOptions,
) {
  const controller = new AbortController();
  const requestIndex = model.requests.length;
  const response = await fetch(`${apiA}/canvases/${canvasId}/ai/generate-stream`, {
    method: 'POST',
    headers: { authorization: `Bearer ${user.accessToken}`, 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify({ prompt: 'Write paragraphs until told to stop' }),
    signal: controller.signal,
  });
  if (!response.ok) throw new Error(`generate-stream answered ${response.status}: ${await response.text()}`);
  const generationId = response.headers.get('x-generation-id')!;
  let blocks = 0;
  let sentAt: Stamp | undefined;
  let sentWall = 0;
  let accepted: Promise<number> | undefined;
  let endedAt: Stamp | undefined;
  let ending = '';
  let at = now();
  const parser = createParser({
    onEvent: (message) => {
      if (message.event === 'tool_output' && ++blocks === options.cancelAfterBlocks) {
        sentAt = now();
        sentWall = Date.now();
        accepted = fetch(`${apiB}/canvases/${canvasId}/ai/generations/${generationId}/cancel`, {
          method: 'POST',
          headers: { authorization: `Bearer ${user.accessToken}` },
        }).then((res) => {
          if (res.status !== 202) throw new Error(`cancel answered ${res.status}`);
          return msBetween(sentAt!);
        });
      }
      if (message.event === 'complete' || message.event === 'error' || message.event === 'cancelled') {
        endedAt ??= at;
        ending ||= message.event;
      }
    },
  });
  const decoder = new TextDecoder();
  await withTimeout(
    (async () => {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        at = now();
        parser.feed(decoder.decode(chunk, { stream: true }));
        if (endedAt) break;
      }
    })(),
    30_000,
    'the cancelled event',
  );
  controller.abort();
  if (ending !== 'cancelled' || !sentAt || !endedAt)
    throw new Error(`the generation ended with ${ending || 'nothing'} instead of cancelled`);
  const toAcceptedMs = await accepted!;
  const recorded = model.requests.slice(requestIndex).find((request) => request.kind === 'chat' && request.closedEarlyAt !== undefined);
  const closedAt = recorded?.kind === 'chat' ? recorded.closedEarlyAt : undefined;
  return {
    toCancelledMs: msBetween(sentAt, endedAt),
    toAcceptedMs,
    toModelClosedMs: closedAt === undefined ? undefined : closedAt - sentWall,
    blocks,
  };
}
