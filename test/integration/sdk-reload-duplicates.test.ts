import { connectCanvas as connectSdk, type CanvasConnection } from '@switchboard/client';
import { startTestApp, type TestApp } from '../support/app';
import { createCanvas, registerUser, request } from '../support/http';
import { connectCanvas, join, record, type CanvasClient } from '../support/sockets';
import { readSse } from '../support/sse';
import { waitUntil } from '../support/wait';

/**
 * A generation's blocks are stored before their broadcast gets its seqs, so a client that loads the
 * canvas between the two (a join, a reload after `resync`) reads blocks whose
 * `blocks_bulk_added_chunk` events come after its cursor. The SDK must not hand those blocks to
 * the application a second time. Real server, real sockets; the broadcast paced slowly so the load
 * lands between its chunks.
 */
describe('the SDK after a load that already holds a broadcast’s blocks', () => {
  let t: TestApp;
  const closers: Array<{ close(): unknown }> = [];

  beforeAll(async () => {
    t = await startTestApp({ env: { BROADCAST_CHUNK_DELAY_MS: '1500', BROADCAST_CHUNK_SIZE: '2' } });
  }, 120_000);

  afterAll(async () => {
    closers.forEach((c) => c.close());
    await t.stop();
  });

  test('hands on none of the blocks its load listed, and still follows the canvas to its last seq', async () => {
    const user = await registerUser(t.api, 'Reloader');
    const canvasId = await createCanvas(t.api, user);
    const observer: CanvasClient = await connectCanvas(t.url, user.accessToken);
    closers.push(observer);
    await join(observer, canvasId);
    const chunks = record(observer, 'blocks_bulk_added_chunk');

    const texts = Array.from({ length: 6 }, (_, i) => `paragraph ${i}`);
    t.llm.push({ toolCalls: texts.map((text) => ({ name: 'create_text', args: { text } })) });
    const sse = await readSse(`${t.api}/canvases/${canvasId}/ai/generate-stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { prompt: 'six' },
      until: (m) => m.event === 'complete' || m.event === 'error',
    });
    expect(sse.messages.at(-1)!.event).toBe('complete');
    // Every block is stored; the first of three chunks went out, the others follow 1.5 s apart.
    await waitUntil(() => chunks.length >= 1, 10_000);
    expect(chunks).toHaveLength(1);

    const sdk: CanvasConnection = await connectSdk({ url: t.url, token: user.accessToken });
    closers.push(sdk);
    const handedBlockIds: string[] = [];
    sdk.onEvent(({ event, payload }) => {
      if (event === 'blocks_bulk_added_chunk' || event === 'generation_redone') handedBlockIds.push(...payload.blocks.map((b) => b.id));
      if (event === 'block_added') handedBlockIds.push(payload.block.id);
    });
    let loaded: string[] = [];
    const ack = await sdk.join(canvasId, 10_000, async () => {
      const res = await request('GET', `${t.api}/canvases/${canvasId}/blocks`, { token: user.accessToken });
      loaded = (res.body.blocks as Array<{ id: string }>).map((b) => b.id);
      return res.body.blocks;
    });
    expect(ack.ok).toBe(true);
    // The load read all six blocks; four of them still have their chunks to come.
    expect(loaded).toHaveLength(6);
    const joinSeq = ack.ok ? ack.seq : Number.NaN;

    await waitUntil(() => chunks.length === 3, 15_000);
    const lastSeq = Math.max(...chunks.map((c) => c.seq));
    // The later chunks come after the join's cursor: the SDK receives them as new events.
    expect(joinSeq).toBeLessThan(lastSeq);
    await waitUntil(() => (sdk.lastSeq(canvasId) ?? 0) >= lastSeq, 10_000);
    expect(handedBlockIds.filter((id) => loaded.includes(id))).toEqual([]);
  }, 60_000);
});
