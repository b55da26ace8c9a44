import { LEASE_RECOVERY_MS, LONG_JOB_LOCKS, recoveredAfter, useCluster } from '../support/cluster';
import { registerUser, request } from '../support/http';
import type { SwitchboardProcess } from '../support/processes';
import { startScriptedLLM, type ScriptedLLM } from '../support/scripted-llm';
import { within } from '../support/wait';

/**
 * kill -9 of the workers while a journey turn waits on its model: the fresh worker started next
 * finds their lapsed worker leases and runs the turn again, well before its lock (a minute here)
 * could lapse, and the answer that was waiting gets its next question.
 */
describe('a journey turn whose worker died', () => {
  const cluster = useCluster('journey-rerun', { ...LONG_JOB_LOCKS, LOG_LEVEL: 'info' });
  let llm: ScriptedLLM;
  const chatCalls: number[] = [];
  let onFirstCall!: () => void;
  const firstCall = new Promise<void>((resolve) => (onFirstCall = resolve));
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));

  beforeAll(async () => {
    llm = await startScriptedLLM(async () => {
      chatCalls.push(Date.now());
      if (chatCalls.length === 1) {
        // The worker making this call is killed meanwhile: the answer never reaches it.
        onFirstCall();
        await released;
      }
      return { text: 'Which folders should it read?' };
    });
  });
  afterAll(async () => {
    release();
    await llm.close();
  });

  test('is run again on a fresh worker through the lease and the waiting answer gets its next question', async () => {
    const modelEnv = { OPENAI_BASE_URL: llm.baseURL, OPENAI_API_KEY: 'test', LLM_MODEL: 'scripted-model' };
    const api = await cluster.spawn({ SWITCHBOARD_ROLES: 'api', PORT: '0', ...modelEnv });
    const workers: SwitchboardProcess[] = await Promise.all([
      cluster.spawn({ SWITCHBOARD_ROLES: 'worker', ...modelEnv }),
      cluster.spawn({ SWITCHBOARD_ROLES: 'worker', ...modelEnv }),
    ]);
    const base = `${api.url}/api/v1`;
    const user = await registerUser(base, 'JourneyRerun');
    const started = await request('POST', `${base}/agents/journey/start`, {
      token: user.accessToken,
      body: { agentType: 'local', dataTypes: ['tasks'] },
    });
    expect(started.status).toBe(201);
    const sessionId = started.body.sessionId as string;

    const answered = request('POST', `${base}/agents/journey/message`, {
      token: user.accessToken,
      body: { sessionId, message: 'Markdown meeting notes' },
    });
    await within(firstCall, 60_000, 'the journey turn called the model');
    for (const worker of workers) worker.child.kill('SIGKILL');
    const killedAt = Date.now();
    let replacementUpAt = 0;
    const replacement = cluster
      .spawn({ SWITCHBOARD_ROLES: 'worker', ...modelEnv })
      .then((worker) => ((replacementUpAt = Date.now()), worker));

    const reply = await answered;
    await replacement;
    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({ sessionId, message: 'Which folders should it read?', done: false, turn: 1 });
    // The turn ran again (a second model call), through the lease.
    expect(chatCalls).toHaveLength(2);
    expect(recoveredAfter(chatCalls[1], killedAt, replacementUpAt)).toBeLessThan(LEASE_RECOVERY_MS);
  }, 120_000);
});
