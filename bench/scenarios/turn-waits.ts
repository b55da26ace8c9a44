import { randomUUID } from 'node:crypto';
import { DeviceSimulator } from '@switchboard/client/testing';
import { demoResponder } from '../../src/demo-model';
import { startOpenAICompatibleServer } from '../../src/demo-model/openai-compatible-server';
import { registerUser, request } from '../../test/support/http';
import { readSse } from '../../test/support/sse';
import type { BenchContext } from '../lib/context';
import { BENCH_TIER_LIMITS, startInProcessSwitchboard, uniquePrefix } from '../lib/harness';
import { percentile, round } from '../lib/stats';
import { msBetween, now, settle, type Stamp } from '../lib/timing';

export interface TurnWaitsOptions {
  /** Measured turns, each parked on an approval and then decided. */
  turns: number;
  warmups: number;
}

const METRICS_TOKEN = 'bench-turn-waits';
/** The benchmark's plan, with room for `turns` chat turns a minute. */
function chatLimits(turns: number): string {
  const limits = JSON.parse(BENCH_TIER_LIMITS) as { free: Record<string, number> };
  return JSON.stringify({ free: { ...limits.free, chatPerMinute: Math.max(30, turns) } });
}

/** How long a turn that asked for a decision may take to be parked: its run `waiting`, its job off the worker. */
const PARK_DEADLINE_MS = 2_000;

/**
 * The turn engine's waits: a chat turn asks the user's device to delete a task, which needs the
 * user's approval, so the turn parks on a waitpoint (its run `waiting`, no worker slot held) until
 * the decision. Per turn, while it waits: the run's status and the `assistant` queue's active jobs
 * (`GET /metrics/queues`), read until the run is `waiting` with no job active (at most 2 s; how long
 * that took from `approval_requested` is reported); then, from the approve request being sent: the
 * resumed turn's first event after `approval_resolved` on the turn's stream, and its `final`. The demo model answers; the
 * device is the client package's simulator; everything runs in this process.
 */
export async function turnWaitsScenario(ctx: BenchContext, options: TurnWaitsOptions) {
  const model = await startOpenAICompatibleServer({ modelLabel: 'demo', responder: demoResponder });
  const app = await startInProcessSwitchboard({
    redis: ctx.redis,
    keyPrefix: uniquePrefix('waits'),
    dataDir: ctx.dataDir,
    endpoint: { baseURL: model.baseURL, apiKey: 'bench', provider: 'scripted', models: ['demo'] },
    // Every turn of the run fits the user's chat allowance (the limit is not under test).
    env: { HITL_TIMEOUT_MS: '300000', METRICS_TOKEN, TIER_LIMITS: chatLimits(options.warmups + options.turns) },
  });
  let device: DeviceSimulator | undefined;
  try {
    const user = await registerUser(app.api, 'Waits');
    device = await DeviceSimulator.connect({
      url: app.url,
      accessToken: user.accessToken,
      deviceId: `laptop-${randomUUID().slice(0, 6)}`,
      reconnection: false,
    });
    const resumed: number[] = [];
    const finals: number[] = [];
    const heldWhileWaiting: number[] = [];
    const parked: number[] = [];
    const statusesWhileWaiting = new Map<string, number>();
    for (let turn = 0; turn < options.warmups + options.turns; turn += 1) {
      let decidedAt: Stamp | undefined;
      let resumedAt: Stamp | undefined;
      let finalAt: Stamp | undefined;
      let decision: Promise<{ status: number }> | undefined;
      let resolved = false;
      let waiting: Promise<void> | undefined;
      const stream = await readSse(`${app.api}/chat/stream`, {
        method: 'POST',
        token: user.accessToken,
        body: { message: `Delete task ${randomUUID()}`, deviceId: device.deviceId },
        timeoutMs: 30_000,
        until: (message) => message.event === 'final' || message.event === 'error',
        onMessage: (message) => {
          if (message.event === 'approval_requested') {
            const approvalId = message.data.approvalId as string;
            const sessionId = message.data.sessionId as string;
            const requestedAt = now();
            // What the wait holds before it is decided: the turn's run (its user message's) reaches
            // `waiting` and its job leaves the worker; the last reading counts when that takes longer
            // than PARK_DEADLINE_MS. Then the decision.
            waiting = (async () => {
              let status = 'unknown';
              let active = Number.NaN;
              for (const deadline = Date.now() + PARK_DEADLINE_MS; Date.now() < deadline; await settle(5)) {
                const [turnMessage, queues] = await Promise.all([
                  app.repos.chat.runningTurn(sessionId),
                  request('GET', `${app.url}/metrics/queues`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } }),
                ]);
                status = (turnMessage && (await app.repos.runs.find('chat', turnMessage.id))?.status) || 'unknown';
                active = Number(queues.body?.queues?.assistant?.active ?? Number.NaN);
                if (status === 'waiting' && active === 0) break;
              }
              if (turn >= options.warmups) {
                parked.push(msBetween(requestedAt));
                statusesWhileWaiting.set(status, (statusesWhileWaiting.get(status) ?? 0) + 1);
                heldWhileWaiting.push(active);
              }
              decidedAt = now();
              decision = request('PUT', `${app.api}/hitl/requests/${approvalId}/approve`, { token: user.accessToken });
            })();
          } else if (message.event === 'approval_resolved') {
            resolved = true;
          } else if (resolved && !resumedAt && decidedAt) {
            resumedAt = now();
          }
          if (message.event === 'final') finalAt = now();
        },
      });
      await waiting;
      const answered = await decision;
      if (!decidedAt || !answered || answered.status !== 200)
        throw new Error(
          `turnWaits: turn ${turn} did not park and resume (HTTP ${stream.status}, decision ${answered?.status ?? 'not sent'}; events ${stream.messages.map((m) => m.event).join(', ')})`,
        );
      if (!finalAt || !resumedAt)
        throw new Error(`turnWaits: turn ${turn} ended without a resumed answer: ${stream.messages.map((m) => m.event).join(', ')}`);
      if (turn < options.warmups) continue;
      resumed.push(msBetween(decidedAt, resumedAt));
      finals.push(msBetween(decidedAt, finalAt));
    }
    const summary = (values: number[]) => ({
      p50: round(percentile(values, 50)),
      p95: round(percentile(values, 95)),
      max: round(Math.max(...values)),
    });
    return {
      config: {
        ...options,
        turn: '"Delete task <id>" on the user\'s device (the demo model calls delete_task, which needs approval); approved over HTTP once the stream shows the request',
      },
      turns: options.turns,
      statusesWhileWaiting: Object.fromEntries(statusesWhileWaiting),
      activeAssistantJobsWhileWaiting: Math.max(...heldWhileWaiting),
      requestToParkedMs: summary(parked),
      decisionToResumedMs: summary(resumed),
      decisionToFinalMs: summary(finals),
    };
  } finally {
    device?.close();
    await app.stop();
    await model.close();
  }
}
