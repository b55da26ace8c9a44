import { loadConfig, QUEUE_NAMES } from '../../config';
import { startWorkerRole, type WorkerRoleDeps } from '../../src/app/worker-role';
import { QUEUE_CATALOG } from '../../src/producers/catalog';
import { onJobs, resolveHandlers } from '../../src/workers/handlers';
import { assistantHandlers } from '../../src/workers/assistant';
import { JOB_HANDLERS } from '../../src/workers/index';

const uuid = '6f1c1a44-1c51-4f7e-9a43-0c6f3a2b9d10';

describe('the queue catalog (src/producers/catalog.ts)', () => {
  test('declares every queue the config knows, under its own name, and nothing else', () => {
    expect(Object.keys(QUEUE_CATALOG).sort()).toEqual([...QUEUE_NAMES].sort());
    for (const [key, declaration] of Object.entries(QUEUE_CATALOG)) expect(declaration.name).toBe(key);
  });

  test('keeps the job names, retry figures and job ids the queues had before it', () => {
    const jobs = Object.fromEntries(Object.values(QUEUE_CATALOG).map((q) => [q.name, Object.keys(q.jobs)]));
    expect(jobs).toEqual({
      generation: ['generate'],
      broadcast: ['broadcast-blocks'],
      assistant: ['chat-turn', 'hitl-resume', 'waitpoint-deadline', 'ticket-notes', 'session-embedding', 'journey-turn', 'chatflow-turn'],
      embeddings: ['embed'],
      connectors: ['connector-fetch'],
      'agent-runs': ['agent-run'],
      flows: ['node', 'evaluation-advance', 'evaluation-score', 'trigger'],
      psa: ['push-notes'],
      webhooks: ['deliver', 'push'],
      knowledge: ['ingest'],
    });
    const { generation, broadcast, assistant, embeddings, connectors } = QUEUE_CATALOG;
    const agentRuns = QUEUE_CATALOG['agent-runs'];
    expect(generation.jobs.generate.options).toMatchObject({ attempts: 3, backoff: { type: 'exponential', delay: 1_000 } });
    expect(broadcast.jobs['broadcast-blocks'].options).toMatchObject({ attempts: 5, backoff: { type: 'exponential', delay: 200 } });
    expect(embeddings.jobs.embed.options).toMatchObject({
      attempts: 3,
      backoff: { type: 'exponential', delay: 250 },
      removeOnComplete: { age: 60 },
      removeOnFail: { age: 3600 },
    });
    expect(assistant.jobs['chat-turn'].options.attempts).toBe(1);
    expect(assistant.jobs['hitl-resume'].options.attempts).toBe(1);
    expect(assistant.jobs['waitpoint-deadline'].options.attempts).toBe(3);
    expect(assistant.jobs['ticket-notes'].options.attempts).toBe(1);
    expect(assistant.jobs['session-embedding'].options).toMatchObject({ attempts: 3, removeOnComplete: true });
    expect(assistant.jobs['journey-turn'].options).toMatchObject({ attempts: 1, removeOnComplete: { age: 3600 } });
    expect(assistant.jobs['chatflow-turn'].options.attempts).toBe(1);
    expect(connectors.jobs['connector-fetch'].options.attempts).toBe(3);
    expect(agentRuns.jobs['agent-run'].options.attempts).toBe(1);
    expect(connectors.limiter).toEqual({ max: 1_000, duration: 1_000 });

    const run = {
      runId: uuid,
      agentId: uuid,
      agentType: 'cloud' as const,
      userId: uuid,
      trigger: 'schedule' as const,
      slot: '2026-01-01T00:00:00.000Z',
    };
    expect(generation.jobs.generate.jobId!({ generationId: uuid, canvasId: uuid, userId: uuid, tier: 'free' })).toBe(uuid);
    expect(broadcast.jobs['broadcast-blocks'].jobId!({ generationId: uuid, canvasId: uuid })).toBe(`broadcast-${uuid}`);
    expect(assistant.jobs['chat-turn'].jobId!({ userId: uuid, sessionId: uuid, messageId: 'm', tools: 'device' })).toBe('m');
    expect(assistant.jobs['hitl-resume'].jobId!({ approvalId: 'a' })).toBe('hitl-resume-a');
    expect(assistant.jobs['waitpoint-deadline'].jobId!({ waitpointId: 'w' })).toBe('waitpoint-deadline-w');
    expect(assistant.jobs['ticket-notes'].jobId!({ userId: uuid, sessionId: 's' })).toBe('notes-s');
    expect(assistant.jobs['session-embedding'].jobId!({ userId: uuid, sessionId: 's' })).toBe('session-embedding-s');
    expect(assistant.jobs['journey-turn'].jobId!({ userId: uuid, sessionId: 's', turn: 2 })).toBe('journey-s-2');
    expect(assistant.jobs['chatflow-turn'].jobId!({ userId: uuid, flowId: uuid, sessionId: uuid, messageId: 'm' })).toBe('m');
    expect(connectors.jobs['connector-fetch'].jobId!(run)).toBe(`fetch-slot-${uuid}-${Date.parse(run.slot)}`);
    expect(agentRuns.jobs['agent-run'].jobId!(run)).toBe(`run-slot-${uuid}-${Date.parse(run.slot)}`);
    expect(agentRuns.jobs['agent-run'].jobId!({ ...run, deviceId: 'laptop' })).toBe(`resume-${uuid}`);
    expect('jobId' in embeddings.jobs.embed).toBe(false);
    // One job per agentflow node, keyed by execution and node: a double dispatch queues it once.
    expect(QUEUE_CATALOG.flows.jobs.node.options).toMatchObject({ attempts: 3, backoff: { type: 'exponential', delay: 1_000 } });
    expect(QUEUE_CATALOG.flows.jobs.node.jobId!({ executionId: uuid, nodeId: 'n-1', userId: uuid, tier: 'free' })).toBe(`flow-${uuid}-n-1`);
    // A trigger's fire is one job however many schedulers or replays enqueue it (no ':' in a BullMQ custom id).
    expect(QUEUE_CATALOG.flows.jobs.trigger.jobId!({ triggerId: uuid, userId: uuid, fire: 'slot-1767225600000', input: {} })).toBe(
      `trigger-${uuid}-slot-1767225600000`,
    );
    // One job per claim of a PSA push: a claim queued twice runs once, a new claim is a new job.
    expect(QUEUE_CATALOG.psa.jobs['push-notes'].options).toMatchObject({ attempts: 4, backoff: { type: 'exponential', delay: 1_000 } });
    expect(QUEUE_CATALOG.psa.jobs['push-notes'].jobId!({ userId: uuid, sessionId: uuid, pushId: uuid })).toBe(`psa-push.${uuid}.${uuid}`);
  });

  test('every job of the catalog has exactly one handler in the worker role', () => {
    const resolved = resolveHandlers(JOB_HANDLERS);
    for (const declaration of Object.values(QUEUE_CATALOG)) {
      expect([...resolved.get(declaration.name)!.keys()].sort()).toEqual(Object.keys(declaration.jobs).sort());
    }
    expect(resolved.get('assistant')!.get('journey-turn')!.source).toBe('src/workers/assistant.ts');
  });
});

describe('resolveHandlers: a worker refuses to start unless each job has one handler', () => {
  const catalog = { q: { jobs: { a: QUEUE_CATALOG.generation.jobs.generate, b: QUEUE_CATALOG.generation.jobs.generate } } };
  const handler = async () => 'done';

  test('given a job without a handler, it throws naming the job and its queue', () => {
    const only = { queue: 'q', source: 'one.ts', handlers: { a: handler } } as never;
    expect(() => resolveHandlers([only], catalog)).toThrow('job "b" of queue q has no handler');
  });

  test('given two handlers for one job, it throws naming the job and both modules', () => {
    const first = { queue: 'q', source: 'one.ts', handlers: { a: handler, b: handler } } as never;
    const second = { queue: 'q', source: 'two.ts', handlers: { b: handler } } as never;
    expect(() => resolveHandlers([first, second], catalog)).toThrow('job "b" of queue q has two handlers (one.ts, two.ts)');
  });

  test('given a handler for a job the catalog does not declare, it throws', () => {
    const all = { queue: 'q', source: 'one.ts', handlers: { a: handler, b: handler, c: handler } } as never;
    expect(() => resolveHandlers([all], catalog)).toThrow('one.ts handles job "c" of queue q, which the catalog does not declare');
  });

  test('the worker role fails at startup, before it connects anything, when a job has two handlers or none', async () => {
    const config = loadConfig({ NODE_ENV: 'test' });
    const doubled = onJobs('assistant', 'test/unit/queue-catalog.test.ts', { 'chat-turn': async () => 'twice' });
    // Only config and handlers are read before the check throws.
    const deps = (handlers: WorkerRoleDeps['handlers']) => ({ config, handlers }) as WorkerRoleDeps;
    await expect(startWorkerRole(deps([...JOB_HANDLERS, doubled]))).rejects.toThrow(
      'job "chat-turn" of queue assistant has two handlers (src/workers/assistant.ts, test/unit/queue-catalog.test.ts)',
    );
    await expect(startWorkerRole(deps(JOB_HANDLERS.filter((set) => set !== assistantHandlers)))).rejects.toThrow(
      'job "chat-turn" of queue assistant has no handler',
    );
  });
});
