import type { SyncAck } from '../../src/schemas/socket-events';
import { useCluster } from '../support/cluster';
import type { CanvasClient } from '../support/sockets';
import { readSse } from '../support/sse';
import { waitUntil } from '../support/wait';

const PROMPT = 'Plan the launch: a heading, three todos (book venue, invite press, ship beta) and a short paragraph';

/**
 * kill -9 of the workers in the middle of a paced broadcast: BullMQ runs the stalled broadcast job
 * again on a fresh worker. The chunks already in the canvas's log are not sent again under new
 * seqs (a client deduping by seq, like the SDK, would hand those blocks to the app twice): every
 * client receives each chunk exactly once, in order, with increasing seqs (0103).
 *
 * The lock is 2 s: a live worker renews it every half lock, and on a loaded machine a late renewal
 * would run the broadcast twice with no crash.
 */
describe('a broadcast re-run after its worker died', () => {
  const cluster = useCluster('bcast-rerun', {
    WORKER_LOCK_MS: '2000',
    BROADCAST_CHUNK_SIZE: '1',
    BROADCAST_CHUNK_DELAY_MS: '1000',
    LOG_LEVEL: 'info',
  });
  const sockets: CanvasClient[] = [];

  afterAll(() => sockets.forEach((socket) => socket.close()));

  test('sends only the chunks not yet logged: each block reaches each client once', async () => {
    const { workerA, workerB, base, user, canvasId, clients, received } = await cluster.apiWorkersAndWatchers('BroadcastRerun');
    sockets.push(...clients);

    // The workers die the moment the generation is complete and the first chunk is out (the others
    // are paced a second apart): on whichever of the two events comes last, not after a poll.
    let completed = false;
    let killedAfter: number | undefined;
    const killWhenBroadcasting = () => {
      if (killedAfter !== undefined || !completed || received[0].length < 1) return;
      workerA.child.kill('SIGKILL');
      workerB.child.kill('SIGKILL');
      killedAfter = received[0].length;
    };
    // Registered after the recorder, so the chunk is in `received` when this runs.
    clients[0].on('blocks_bulk_added_chunk', killWhenBroadcasting);
    const sse = await readSse(`${base}/canvases/${canvasId}/ai/generate-stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { prompt: PROMPT },
      timeoutMs: 90_000,
      until: (m) => m.event === 'complete' || m.event === 'error',
      onMessage: (m) => {
        completed ||= m.event === 'complete';
        killWhenBroadcasting();
      },
    });
    const complete = sse.messages.at(-1)!;
    expect(complete.event).toBe('complete');
    const ids = complete.data.blocks.map((b: { id: string }) => b.id);
    expect(ids).toHaveLength(5);

    await waitUntil(() => killedAfter !== undefined, 30_000);
    expect(killedAfter).toBeLessThan(5);
    await cluster.spawn({ SWITCHBOARD_ROLES: 'worker' });

    for (const chunks of received) {
      await waitUntil(() => chunks.flatMap((c) => c.blocks).length >= 5, 60_000);
      expect(chunks.map((c) => c.chunkIndex)).toEqual([0, 1, 2, 3, 4]);
      expect(chunks.flatMap((c) => c.blocks.map((b) => b.id))).toEqual(ids);
      const seqs = chunks.map((c) => c.seq);
      expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
      expect(new Set(seqs).size).toBe(seqs.length);
    }
    // Nothing more arrives: the catch-up log holds each chunk of this generation once.
    const sync: SyncAck = await clients[0].timeout(15_000).emitWithAck('canvas:sync', { canvasId, afterSeq: 0 });
    expect(sync).toMatchObject({ ok: true, resync: false });
    const logged = sync.ok && !sync.resync ? sync.events.filter((e) => e.event === 'blocks_bulk_added_chunk') : [];
    expect(logged.map((e) => e.payload.chunkIndex)).toEqual([0, 1, 2, 3, 4]);
  }, 240_000);
});
