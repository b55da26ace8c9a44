import { Client } from 'pg';
import { REBALANCE_THRESHOLD } from '../../src/models/lexorank';
import type { SyncAck } from '../../src/schemas/socket-events';
import { CANVAS_ROOM_EVENTS } from '../../src/schemas/socket-events';
import { useCluster } from '../support/cluster';
import { createCanvas, registerUser, request } from '../support/http';
import { connectCanvas, join } from '../support/sockets';
import { readSse } from '../support/sse';
import { waitUntil } from '../support/wait';

/**
 * Room event seqs, across processes: the API process (block routes, undo, `queued`) and a worker process
 * (generation stages, broadcast chunks) append to one canvas's sequence. Every room event kind
 * reaches a client with `seq`, and the seqs of all of them together are 1..N with no gap and no
 * repeat, exactly what `canvas:sync` replays.
 */
describe('canvas seq from every process', () => {
  const cluster = useCluster('seqp', { BROADCAST_CHUNK_SIZE: '2' });

  test('every room event kind carries seq, consecutive across the api and worker processes', async () => {
    const [api] = await Promise.all([
      cluster.spawn({ SWITCHBOARD_ROLES: 'api', PORT: '0' }),
      cluster.spawn({ SWITCHBOARD_ROLES: 'worker' }),
    ]);
    const base = `${api.url}/api/v1`;
    const owner = await registerUser(base, 'SeqOwner');
    const canvasId = await createCanvas(base, owner);
    const socket = await connectCanvas(api.url!, owner.accessToken);
    const seen: Array<{ event: string; seq: unknown; payload: Record<string, unknown> }> = [];
    try {
      for (const name of CANVAS_ROOM_EVENTS)
        socket.on(name as 'block_added', (payload) => seen.push({ event: name, seq: payload.seq, payload }));
      expect(await join(socket, canvasId)).toMatchObject({ ok: true, seq: 0 });

      const added = (
        await request('POST', `${base}/canvases/${canvasId}/blocks`, {
          token: owner.accessToken,
          body: { type: 'text', content: { text: 'hand' } },
        })
      ).body.block;
      expect(
        (
          await request('PATCH', `${base}/canvases/${canvasId}/blocks/${added.id}`, {
            token: owner.accessToken,
            body: { content: { text: 'edited' } },
          })
        ).status,
      ).toBe(200);
      expect((await request('DELETE', `${base}/canvases/${canvasId}/blocks/${added.id}`, { token: owner.accessToken })).status).toBe(204);
      const sse = await readSse(`${base}/canvases/${canvasId}/ai/generate-stream`, {
        method: 'POST',
        token: owner.accessToken,
        body: { prompt: 'Plan the launch: a heading, three todos (book venue, invite press, ship beta) and a short paragraph' },
        until: (m) => m.event === 'complete' || m.event === 'error',
      });
      const complete = sse.messages.at(-1)!;
      expect(complete.event).toBe('complete');
      await waitUntil(() => seen.filter((e) => e.event === 'blocks_bulk_added_chunk').length === 3, 20_000);
      expect(
        (
          await request('POST', `${base}/canvases/${canvasId}/ai/generations/${complete.data.generationId}/undo`, {
            token: owner.accessToken,
          })
        ).status,
      ).toBe(200);
      await waitUntil(() => seen.some((e) => e.event === 'generation_undone'), 20_000);
      // And back once: the redo's room event is counted too.
      expect(
        (
          await request('POST', `${base}/canvases/${canvasId}/ai/generations/${complete.data.generationId}/redo`, {
            token: owner.accessToken,
          })
        ).status,
      ).toBe(200);
      await waitUntil(() => seen.some((e) => e.event === 'generation_redone'), 20_000);
      // A rebalance from the worker: a generation into a gap whose ranks were planted at the limit.
      const db = new Client({ connectionString: cluster.databaseUrl() });
      await db.connect();
      const prefix = 'V'.repeat(REBALANCE_THRESHOLD - 1);
      const planted = await db
        .query(
          `insert into blocks (canvas_id, type, content, rank, created_by) values ($1, 'text', '{"text":"left"}', $2, $4), ($1, 'text', '{"text":"right"}', $3, $4) returning id, rank`,
          [canvasId, `${prefix}1`, `${prefix}2`, owner.id],
        )
        .finally(() => db.end());
      const left = planted.rows.find((row) => row.rank === `${prefix}1`)!;
      const second = await readSse(`${base}/canvases/${canvasId}/ai/generate-stream`, {
        method: 'POST',
        token: owner.accessToken,
        body: { prompt: 'A short paragraph', afterId: left.id },
        until: (m) => m.event === 'complete' || m.event === 'error',
      });
      expect(second.messages.at(-1)!.event).toBe('complete');
      const secondId = second.messages.at(-1)!.data.generationId;
      const chunksOf = (id: string) => seen.filter((e) => e.event === 'blocks_bulk_added_chunk' && e.payload.generationId === id);
      await waitUntil(
        () =>
          seen.some((e) => e.event === 'blocks_reranked') &&
          chunksOf(secondId).length > 0 &&
          chunksOf(secondId).length === chunksOf(secondId)[0].payload.chunkCount,
        20_000,
      );

      // A room thread's turn: its message logged by the api, its events by the worker.
      const thread = (await request('POST', `${base}/canvases/${canvasId}/threads`, { token: owner.accessToken, body: {} })).body.thread;
      const posted = await request('POST', `${base}/canvases/${canvasId}/threads/${thread.id}/messages`, {
        token: owner.accessToken,
        body: { message: 'Say hello to the room' },
      });
      expect(posted.status).toBe(202);
      await waitUntil(
        () => seen.some((e) => e.event === 'thread_event' && (e.payload.event as { type: string; state?: string }).state === 'idle'),
        20_000,
      );

      expect(new Set(seen.map((e) => e.event))).toEqual(new Set(CANVAS_ROOM_EVENTS));
      const seqs = seen.map((e) => e.seq as number).sort((a, b) => a - b);
      expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
      const replay: SyncAck = await socket.timeout(10_000).emitWithAck('canvas:sync', { canvasId, afterSeq: 0 });
      expect(replay).toMatchObject({ ok: true, resync: false, lastSeq: seqs.length });
      if (replay.ok && !replay.resync)
        expect(replay.events.map((e) => [e.seq, e.event])).toEqual(
          [...seen].sort((a, b) => (a.seq as number) - (b.seq as number)).map((e) => [e.seq, e.event]),
        );
    } finally {
      socket.close();
    }
  }, 90_000);
});
