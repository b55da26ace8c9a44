import { LEASE_RECOVERY_MS, LONG_JOB_LOCKS, useCluster } from '../support/cluster';
import { registerUser, request } from '../support/http';
import { loggedAt, untilPrinted, type SwitchboardProcess } from '../support/processes';
import { readSse } from '../support/sse';

/**
 * kill -9 of the worker streaming a chatflow answer (0120): its worker lease lapses and the other
 * worker takes the job well before its lock (a minute here) could lapse. It sees that the listener
 * already has part of the answer and ends the turn with `error interrupted` instead of streaming it
 * a second time. Nothing is stored as an answer; the next message in the same session is answered
 * normally.
 */
describe('a chatflow turn whose worker died mid-answer', () => {
  // The demo model answers word by word, 300 ms apart, quoting the message: about 14 s for the
  // first one, so the kill at its first word lands mid-answer even when the machine is busy.
  const cluster = useCluster('chatflow-rerun', { ...LONG_JOB_LOCKS, DEMO_LLM_DELAY_MS: '300', LOG_LEVEL: 'info' });
  const LONG_MESSAGE =
    'Tell me about the harbour, the ships, the weather and the tides, the lighthouse on the point, ' +
    'the fishing boats that leave before dawn, the market on the quay and the ferry to the islands';

  test('ends with error interrupted on the stream, repeats no text, and the session goes on', async () => {
    const [api, workerA, workerB] = await Promise.all([
      cluster.spawn({ SWITCHBOARD_ROLES: 'api', PORT: '0' }),
      cluster.spawn({ SWITCHBOARD_ROLES: 'worker' }),
      cluster.spawn({ SWITCHBOARD_ROLES: 'worker' }),
    ]);
    const base = `${api.url}/api/v1`;
    const user = await registerUser(base, 'Rerun');
    const flow = await request('POST', `${base}/flows`, {
      token: user.accessToken,
      body: { type: 'chatflow', name: 'Slow', definition: { systemPrompt: 'You answer at length.' } },
    });
    expect(flow.status).toBe(201);
    let killed: SwitchboardProcess | undefined;
    let killedAt = 0;

    const sse = await readSse(`${base}/flows/${flow.body.flow.id}/chat/stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { message: LONG_MESSAGE },
      timeoutMs: 60_000,
      onMessage: (message) => {
        if (killed || message.event !== 'text_chunk') return;
        killed = [workerA, workerB].find((worker) => worker.output().includes('chatflow turn started'));
        killed?.child.kill('SIGKILL');
        if (killed) killedAt = Date.now();
      },
    });

    expect(killed).toBeDefined();
    const last = sse.messages.at(-1)!;
    // Which workers started the turn: one, unless the other took it over while the first still ran.
    const starters = [workerA, workerB].filter((worker) => worker.output().includes('chatflow turn started')).length;
    expect({ event: last.event, code: last.data.code, starters }).toEqual({ event: 'error', code: 'interrupted', starters: 1 });
    const texts = sse.messages.filter((m) => m.event === 'text_chunk').map((m) => m.data.text as string);
    const sessionId = last.data.sessionId as string;
    const history = await request('GET', `${base}/chat/sessions/${sessionId}/history`, { token: user.accessToken });
    expect(history.body.messages.map((m: { role: string }) => m.role)).toEqual(['user']);
    // No piece of the answer reached the listener twice.
    expect(new Set(texts.map((text, i) => `${i}:${text}`)).size).toBe(texts.length);
    const survivor = killed === workerA ? workerB : workerA;
    await untilPrinted(survivor, 'chatflow turn interrupted: the worker streaming it stopped');
    expect(loggedAt(survivor, ['chatflow turn interrupted'])! - killedAt).toBeLessThan(LEASE_RECOVERY_MS);

    const next = await request('POST', `${base}/flows/${flow.body.flow.id}/chat`, {
      token: user.accessToken,
      body: { message: 'Short one', sessionId },
    });
    expect(next.status).toBe(200);
    expect(next.body.sessionId).toBe(sessionId);
    expect(next.body.response.length).toBeGreaterThan(0);
  }, 120_000);
});
