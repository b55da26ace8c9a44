import { createParser } from 'eventsource-parser';
import { DeviceSimulator } from '@switchboard/client/testing';
import { LEASE_RECOVERY_MS, LONG_JOB_LOCKS, recoveredAfter, useCluster } from '../support/cluster';
import { registerUser, request } from '../support/http';

/**
 * kill -9 of the workers while ticket notes stream: the fresh worker started next finds their
 * lapsed worker leases and runs the notes job again, well before its lock (a minute here) could
 * lapse. Part of the notes is already in the session's notes event stream, so streaming them again
 * would repeat that text to every reader; the re-run ends the notes with an `error` (`failed`, as
 * the reaper ends interrupted notes) instead.
 */
describe('ticket notes re-run after their worker died', () => {
  const cluster = useCluster('notes-rerun', { ...LONG_JOB_LOCKS, DEMO_LLM_DELAY_MS: '150', LOG_LEVEL: 'info' });
  let device: DeviceSimulator | undefined;

  afterAll(() => device?.close());

  test('end with an [ERROR] and status failed instead of streaming the notes a second time', async () => {
    const [api, workerA, workerB] = await Promise.all([
      cluster.spawn({ SWITCHBOARD_ROLES: 'api', PORT: '0' }),
      cluster.spawn({ SWITCHBOARD_ROLES: 'worker' }),
      cluster.spawn({ SWITCHBOARD_ROLES: 'worker' }),
    ]);
    const base = `${api.url}/api/v1`;
    const user = await registerUser(base, 'NotesRerun');
    device = await DeviceSimulator.connect({
      url: api.url!,
      accessToken: user.accessToken,
      deviceId: 'laptop-notes-rerun',
      seed: {},
      reconnection: false,
    });
    const chat = await request('POST', `${base}/chat`, {
      token: user.accessToken,
      body: { message: 'Hello, my printer prints blank pages.', deviceId: device.deviceId },
    });
    // The error (if any) is part of what is compared, so a failure says why.
    expect({ status: chat.status, error: chat.body.error }).toEqual({ status: 200, error: undefined });
    const sessionId = chat.body.sessionId as string;
    expect((await request('POST', `${base}/chat/sessions/${sessionId}/resolve`, { token: user.accessToken, body: {} })).status).toBe(200);

    const response = await fetch(`${base}/chat/sessions/${sessionId}/documentation/stream`, {
      headers: { authorization: `Bearer ${user.accessToken}`, accept: 'text/event-stream' },
      signal: AbortSignal.timeout(60_000),
    });
    expect(response.status).toBe(200);
    const data: string[] = [];
    let crashed = false;
    let killedAt = 0;
    let endedAt = 0;
    let replacementUpAt = 0;
    let replacementError: unknown;
    const parser = createParser({
      onEvent: (event) => {
        data.push(event.data);
        if (event.data.startsWith('[ERROR]')) endedAt = Date.now();
        if (crashed) return;
        // The notes are streaming on one of the workers: kill both, then start a fresh one.
        crashed = true;
        workerA.child.kill('SIGKILL');
        workerB.child.kill('SIGKILL');
        killedAt = Date.now();
        void cluster.spawn({ SWITCHBOARD_ROLES: 'worker' }).then(
          () => (replacementUpAt = Date.now()),
          (error: unknown) => (replacementError = error),
        );
      },
    });
    const decoder = new TextDecoder();
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) parser.feed(decoder.decode(chunk, { stream: true }));

    expect(replacementError).toBeUndefined();
    expect(crashed).toBe(true);
    expect(data.at(-1)).toMatch(/^\[ERROR\] The notes were interrupted/);
    expect(data).not.toContain('[DONE]');
    // Ended through the lease.
    expect(recoveredAfter(endedAt, killedAt, replacementUpAt)).toBeLessThan(LEASE_RECOVERY_MS);
    // Nothing streamed twice: the first heading appears once.
    expect(data.join('').split('## ').length - 1).toBeLessThanOrEqual(4);
    const stored = await request('GET', `${base}/chat/sessions/${sessionId}/documentation`, { token: user.accessToken });
    expect(stored.body).toMatchObject({ sessionId, documentationStatus: 'failed', documentation: null });
  }, 90_000);
});
