import { randomUUID } from 'node:crypto';
import { createRedis, redisReady } from '../../src/lib/redis';
import { enqueueEmbedding } from '../../src/producers/embeddings';
import { QueueRegistry } from '../../src/producers/queue-registry';
import { startTestApp } from '../support/app';
import { testRedisUrl } from '../support/database';

test('exp', async () => {
  const t = await startTestApp();
  const command = createRedis(testRedisUrl(), 'command');
  const blocking = createRedis(testRedisUrl(), 'blocking');
  await redisReady(command);
  const queues = new QueueRegistry(command, t.keyPrefix, blocking);
  const events = queues.events('embeddings');
  await events.waitUntilReady();
  await new Promise((r) => setTimeout(r, 300));
  for (const round of [1, 2]) {
    const from = t.llm.requests.length;
    const t0 = Date.now();
    const jobs = await Promise.all(Array.from({ length: 20 }, (_, i) => enqueueEmbedding(queues, { text: `r${round} text ${i}`, userId: randomUUID(), tier: 'free' })));
    const t1 = Date.now();
    await Promise.all(jobs.map((j) => j.waitUntilFinished(events, 5000)));
    console.log('round', round, 'enqueue ms', t1 - t0, 'sizes', t.llm.requests.slice(from).map((r) => (r.kind === 'embeddings' ? (r.body.input as string[]).length : -1)), 'at', t.llm.requests.slice(from).map((r) => r.receivedAt - t0));
    await new Promise((r) => setTimeout(r, 300));
  }
  await queues.close();
  command.disconnect(); blocking.disconnect();
  await t.stop();
});
