import { Queue } from 'bullmq';
import { Client } from 'pg';
import { createRedis, redisReady } from '../../src/lib/redis';
import { bullPrefix } from '../../src/producers/registry';
import { useCluster } from '../support/cluster';
import { testRedisTarget } from '../support/database';
import { registerUser, request } from '../support/http';
import { eventually } from '../support/wait';

/**
 * Three real scheduler processes (`SWITCHBOARD_ROLES=scheduler`, ticking every second) on one
 * PostgreSQL database and one Redis: a due agent gets exactly one queued run per slot, also when
 * a scheduler "crashed" between enqueueing and moving the schedule (the slot comes due again).
 */
describe('three scheduler processes', () => {
  const cluster = useCluster('sched', { SCHEDULER_TICK_CRON: '* * * * * *' });

  test('one queued run per due slot, however many schedulers tick', async () => {
    const [api] = await Promise.all([
      cluster.spawn({ SWITCHBOARD_ROLES: 'api', PORT: '0' }),
      ...[1, 2, 3].map(() => cluster.spawn({ SWITCHBOARD_ROLES: 'scheduler' })),
    ]);
    const base = `${api.url}/api/v1`;
    const user = await registerUser(base, 'Cron');
    const created = await request('POST', `${base}/agents/local`, {
      token: user.accessToken,
      body: {
        name: 'Six-hourly',
        deviceId: 'laptop',
        directoryPaths: ['/notes'],
        dataTypes: ['tasks'],
        promptTemplate: 'Extract tasks',
        scheduleCron: '0 */6 * * *',
      },
    });
    expect(created.status).toBe(201);
    const agentId = created.body.id as string;

    const db = new Client({ connectionString: cluster.databaseUrl() });
    await db.connect();
    const redis = createRedis(testRedisTarget('queues'), 'command');
    await redisReady(redis);
    const queue = new Queue('agent-runs', { connection: redis, prefix: bullPrefix(cluster.keyPrefix) });
    const nextRunAt = async () =>
      (await db.query<{ next_run_at: Date }>('select next_run_at from local_agents where id = $1', [agentId])).rows[0].next_run_at;
    const jobsOfAgent = async () =>
      (await queue.getJobs(['waiting', 'delayed', 'active', 'completed', 'failed'])).filter((job) => job.data.agentId === agentId);
    /** Makes the agent due (as after three days of downtime) and waits until a scheduler moved it on. */
    const dueAndWait = async () => {
      await db.query(`update local_agents set next_run_at = now() - interval '3 days' where id = $1`, [agentId]);
      // A tick a second, three schedulers: generous for a loaded machine, where a tick can come late.
      await eventually(nextRunAt, (next) => next.getTime() > Date.now(), 30_000);
    };
    try {
      await dueAndWait();
      const [job] = await jobsOfAgent();
      expect(await jobsOfAgent()).toHaveLength(1);
      expect(job.id).toMatch(new RegExp(`^run-slot-${agentId}-\\d+$`));
      expect(job.data).toMatchObject({ agentId, agentType: 'local', trigger: 'schedule', userId: user.id });
      expect(new Date(job.data.slot).getUTCHours() % 6).toBe(0);

      // The same slot due again (a scheduler died after enqueueing): all three enqueue it again, one job remains.
      await dueAndWait();
      await dueAndWait();
      expect((await jobsOfAgent()).map((j) => j.id)).toEqual([job.id]);
    } finally {
      await queue.close();
      redis.disconnect();
      await db.end();
    }
  }, 180_000);
});
