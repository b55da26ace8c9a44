import { request } from '../support/http';
import { loggedAt, untilPrinted } from '../support/processes';
import { generateKillingItsWorker, LEASE_RECOVERY_MS, LONG_JOB_LOCKS, useCluster } from '../support/cluster';
import type { CanvasClient } from '../support/sockets';
import { waitUntil } from '../support/wait';

const PROMPT = 'Plan the launch: a heading, three todos (book venue, invite press, ship beta) and a short paragraph';

/**
 * kill -9 of the worker running a generation: its worker lease lapses, the surviving worker puts
 * the job back to waiting and runs it again, well before its lock (a minute here) could lapse, and
 * the retry neither duplicates blocks nor loses any for the clients, nor drafts for a client that
 * appends what the generation's stream sends.
 */
describe('a worker killed in the middle of a generation', () => {
  const cluster = useCluster('crash', { ...LONG_JOB_LOCKS, DEMO_LLM_DELAY_MS: '150', LOG_LEVEL: 'info' });
  const sockets: CanvasClient[] = [];

  afterAll(() => sockets.forEach((socket) => socket.close()));

  test('another worker completes it, exactly one set of blocks exists, and every client receives every block', async () => {
    const { workerA, workerB, base, user, canvasId, clients, received } = await cluster.apiWorkersAndWatchers('Crash');
    sockets.push(...clients);

    // At the first block, the worker that logged the start of this generation is killed.
    const { sse, killed, killedAt, survivor } = await generateKillingItsWorker(
      base,
      user.accessToken,
      canvasId,
      [workerA, workerB],
      PROMPT,
    );

    expect(killed).toBeDefined();
    const complete = sse.messages.at(-1)!;
    expect(complete.event).toBe('complete');
    await untilPrinted(survivor, `"generationId":"${complete.data.generationId}"`);
    // Resumed on the survivor through the lease.
    const resumedAt = loggedAt(survivor, ['generation started', complete.data.generationId]);
    expect(resumedAt! - killedAt).toBeLessThan(LEASE_RECOVERY_MS);
    expect(complete.data.blocks.map((b: { type: string }) => b.type)).toEqual(['heading', 'todo', 'todo', 'todo', 'text']);

    // The rerun starts with `rollback {fromIndex: 0}`, after the dead attempt's drafts and before its own:
    // a client that appends each `tool_output` and drops from a rollback's index shows each block once.
    const kinds = sse.messages.map((m) => (m.event === 'rollback' ? `rollback ${m.data.fromIndex}` : m.event));
    const rollback = kinds.indexOf('rollback 0');
    expect(kinds.slice(0, rollback)).toContain('tool_output');
    expect(rollback).toBeLessThan(kinds.lastIndexOf('tool_output'));
    const drafts: Array<{ type: string }> = [];
    for (const message of sse.messages) {
      if (message.event === 'tool_output') drafts.push(message.data.block);
      if (message.event === 'rollback') drafts.splice(message.data.fromIndex);
    }
    expect(drafts.map((block) => block.type)).toEqual(['heading', 'todo', 'todo', 'todo', 'text']);

    const stored = await request('GET', `${base}/canvases/${canvasId}/blocks`, { token: user.accessToken });
    expect(stored.body.blocks).toHaveLength(5);
    const ids = complete.data.blocks.map((b: { id: string }) => b.id);
    expect(stored.body.blocks.map((b: { id: string }) => b.id)).toEqual(ids);
    for (const chunks of received) {
      await waitUntil(() => chunks.flatMap((c) => c.blocks).length >= 5, 15_000);
      expect(chunks.flatMap((c) => c.blocks.map((b) => b.id))).toEqual(ids);
    }
    const generation = await request('GET', `${base}/canvases/${canvasId}/ai/generations/${complete.data.generationId}`, {
      token: user.accessToken,
    });
    expect(generation.body.generation).toMatchObject({ status: 'completed', blockCount: 5 });
    expect(generation.body.generation.attempts).toBeGreaterThanOrEqual(2);
  }, 90_000);
});
