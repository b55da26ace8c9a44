import { CanvasSequencer, type CanvasRoomEvent } from '@switchboard/client';
import type { CanvasLogEntry, SyncAck } from '../../src/schemas/socket-events';

/** The client side of exactly-once room events on its own: ordering, dedupe, gap repair and resync. */
describe('CanvasSequencer', () => {
  const CANVAS = '00000000-0000-4000-8000-000000000001';
  const entry = (seq: number): CanvasLogEntry => ({ seq, event: 'block_deleted', payload: { canvasId: CANVAS, blockId: `b${seq}`, seq } });

  function given(serverLog: CanvasLogEntry[], options: { keptFrom?: number; graceMs?: number } = {}) {
    const handed: number[] = [];
    const resyncs: number[] = [];
    const asked: number[] = [];
    const sync = async (_canvasId: string, afterSeq: number): Promise<SyncAck> => {
      asked.push(afterSeq);
      const lastSeq = serverLog.at(-1)?.seq ?? 0;
      if (options.keptFrom !== undefined && afterSeq + 1 < options.keptFrom) return { ok: true, resync: true, lastSeq };
      return { ok: true, resync: false, events: serverLog.filter((e) => e.seq > afterSeq), lastSeq };
    };
    const sequencer = new CanvasSequencer(
      sync,
      (event: CanvasRoomEvent) => handed.push(event.payload.seq),
      (_id, lastSeq) => resyncs.push(lastSeq),
      options.graceMs,
    );
    const live = (seq: number) => sequencer.receive('block_deleted', { canvasId: CANVAS, seq });
    return { sequencer, handed, resyncs, asked, live };
  }

  test('in-order events are handed on at once; duplicates and stale ones are dropped', () => {
    const { sequencer, handed, live, asked } = given([]);
    sequencer.track(CANVAS, 0);
    [1, 2, 2, 3, 1].forEach(live);
    expect(handed).toEqual([1, 2, 3]);
    expect(asked).toEqual([]);
  });

  /** Resolves once `check` holds, polling every few milliseconds; rejects after `timeoutMs`. */
  async function until(check: () => boolean, timeoutMs = 2_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (Date.now() > deadline) throw new Error('condition not met in time');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  test('a jump whose missing events never come is asked for after the grace and handed on in order, once', async () => {
    const log = [1, 2, 3, 4, 5].map(entry);
    const { sequencer, handed, live, asked } = given(log, { graceMs: 20 });
    sequencer.track(CANVAS, 0);
    live(1);
    live(4); // 2 and 3 were lost
    live(5);
    expect(asked).toEqual([]); // not at once: they may be on their way
    await until(() => handed.length === 5);
    expect(handed).toEqual([1, 2, 3, 4, 5]);
    expect(asked).toEqual([1]);
  });

  test('events arriving out of order within the grace are handed on in order without asking the server', () => {
    jest.useFakeTimers();
    const { sequencer, handed, live, asked } = given([1, 2, 3, 4].map(entry), { graceMs: 30 });
    sequencer.track(CANVAS, 0);
    live(1);
    live(3); // 2 was sent after 3 (its change committed later)
    live(4);
    expect(handed).toEqual([1]);
    live(2);
    expect(handed).toEqual([1, 2, 3, 4]);
    // Past the longest grace (twice the configured one), still nothing was asked.
    jest.advanceTimersByTime(61);
    expect(asked).toEqual([]);
    jest.useRealTimers();
  });

  test('catchUp asks at once, without waiting for a gap grace', async () => {
    const log = [1, 2, 3].map(entry);
    const { sequencer, handed, live, asked } = given(log, { graceMs: 60_000 });
    sequencer.track(CANVAS, 0);
    live(3);
    await sequencer.catchUp(CANVAS);
    expect(asked).toEqual([0]);
    expect(handed).toEqual([1, 2, 3]);
  });

  test('after a reconnect, catchUp fetches what was missed; events arriving twice are handed on once', async () => {
    const log = [1, 2, 3].map(entry);
    const { sequencer, handed, live } = given(log);
    sequencer.track(CANVAS, 0);
    live(1);
    await sequencer.catchUp(CANVAS);
    [2, 3].forEach(live); // also replayed by Socket.IO's recovery
    expect(handed).toEqual([1, 2, 3]);
  });

  test('blocks_reranked: handed on, then the application reloads; events arriving during the reload wait for it, in order', async () => {
    const handed: string[] = [];
    let finishReload!: () => void;
    const reloads: number[] = [];
    const sequencer = new CanvasSequencer(
      async () => ({ ok: true, resync: false, events: [], lastSeq: 0 }),
      (event) => handed.push(`${event.event}:${event.payload.seq}`),
      (_id, lastSeq) => (reloads.push(lastSeq), new Promise<void>((resolve) => (finishReload = resolve))),
    );
    sequencer.track(CANVAS, 0);
    sequencer.receive('block_deleted', { canvasId: CANVAS, seq: 1 });
    sequencer.receive('blocks_reranked', { canvasId: CANVAS, seq: 2 });
    sequencer.receive('block_deleted', { canvasId: CANVAS, seq: 3 });
    expect(handed).toEqual(['block_deleted:1', 'blocks_reranked:2']);
    expect(reloads).toEqual([2]);
    finishReload();
    await new Promise((resolve) => setImmediate(resolve));
    expect(handed).toEqual(['block_deleted:1', 'blocks_reranked:2', 'block_deleted:3']);
    expect(sequencer.lastSeq(CANVAS)).toBe(3);
  });

  test('blocks_reranked among held events (after a gap): what follows it still waits for the reload', async () => {
    const handed: string[] = [];
    let finishReload!: () => void;
    const sequencer = new CanvasSequencer(
      async () => ({ ok: true, resync: false, events: [], lastSeq: 0 }),
      (event) => handed.push(`${event.event}:${event.payload.seq}`),
      () => new Promise<void>((resolve) => (finishReload = resolve)),
    );
    sequencer.track(CANVAS, 0);
    sequencer.receive('blocks_reranked', { canvasId: CANVAS, seq: 2 });
    sequencer.receive('block_deleted', { canvasId: CANVAS, seq: 3 });
    sequencer.receive('block_deleted', { canvasId: CANVAS, seq: 1 }); // fills the gap: 1, then 2 starts a reload
    expect(handed).toEqual(['block_deleted:1', 'blocks_reranked:2']);
    finishReload();
    await new Promise((resolve) => setImmediate(resolve));
    expect(handed).toEqual(['block_deleted:1', 'blocks_reranked:2', 'block_deleted:3']);
  });

  test('when the server no longer keeps the gap, the application is told to reload and continues after lastSeq', async () => {
    const log = [10, 11, 12].map(entry);
    const { sequencer, handed, resyncs, live } = given(log, { keptFrom: 10 });
    sequencer.track(CANVAS, 2);
    live(12);
    await sequencer.catchUp(CANVAS);
    expect(resyncs).toEqual([12]);
    expect(handed).toEqual([]);
    live(13);
    expect(handed).toEqual([13]);
  });

  test('while the application reloads after resync, live events wait and are handed on after the reload, in order', async () => {
    const log = [10, 11, 12].map(entry);
    const handed: string[] = [];
    let finishReload!: () => void;
    const sequencer = new CanvasSequencer(
      async (_id, afterSeq): Promise<SyncAck> =>
        afterSeq < 9
          ? { ok: true, resync: true, lastSeq: 12 }
          : { ok: true, resync: false, events: log.filter((e) => e.seq > afterSeq), lastSeq: 12 },
      (event) => handed.push(`event ${event.payload.seq}`),
      () => new Promise<void>((resolve) => (finishReload = () => (handed.push('reloaded'), resolve()))),
    );
    sequencer.track(CANVAS, 2);
    const caughtUp = sequencer.catchUp(CANVAS);
    await new Promise((resolve) => setImmediate(resolve));
    sequencer.receive('block_deleted', { canvasId: CANVAS, seq: 14 });
    sequencer.receive('block_deleted', { canvasId: CANVAS, seq: 13 });
    sequencer.receive('block_deleted', { canvasId: CANVAS, seq: 12 });
    expect(handed).toEqual([]);
    finishReload();
    await caughtUp;
    expect(handed).toEqual(['reloaded', 'event 13', 'event 14']);
  });

  test("events arriving during the application's first load (after the join) wait for it, then follow in order", async () => {
    const handed: string[] = [];
    const sequencer = new CanvasSequencer(
      async (): Promise<SyncAck> => ({ ok: true, resync: false, events: [], lastSeq: 7 }),
      (event) => handed.push(`event ${event.payload.seq}`),
      () => undefined,
    );
    sequencer.track(CANVAS, 5);
    let finishLoad!: () => void;
    const loading = sequencer.load(CANVAS, () => new Promise<void>((resolve) => (finishLoad = () => (handed.push('loaded'), resolve()))));
    sequencer.receive('block_deleted', { canvasId: CANVAS, seq: 7 });
    sequencer.receive('block_deleted', { canvasId: CANVAS, seq: 6 });
    expect(handed).toEqual([]);
    finishLoad();
    await loading;
    expect(handed).toEqual(['loaded', 'event 6', 'event 7']);
  });

  describe('blocks a load or reload already read', () => {
    const block = (id: string) => ({ id, canvasId: CANVAS, type: 'text', content: { text: id }, rank: `r-${id}` });
    const chunk = (seq: number, ids: string[]) => ({
      canvasId: CANVAS,
      generationId: 'g1',
      chunkIndex: 0,
      chunkCount: 1,
      blocks: ids.map(block),
      seq,
    });
    /** What the application got: each event's name, seq and the block ids it carried. */
    const describeEvent = (event: CanvasRoomEvent) => {
      const p = event.payload as { seq: number; blocks?: Array<{ id: string }>; block?: { id: string }; blockId?: string };
      const ids = p.blocks?.map((b) => b.id) ?? (p.block ? [p.block.id] : p.blockId ? [p.blockId] : []);
      return `${event.event} ${p.seq} [${ids.join(',')}]`;
    };

    test('after a resync, events adding blocks the reload listed leave them out, or are not handed on at all', async () => {
      const handed: string[] = [];
      const sequencer = new CanvasSequencer(
        async (): Promise<SyncAck> => ({ ok: true, resync: true, lastSeq: 20 }),
        (event) => handed.push(describeEvent(event)),
        // The reload read the canvas after seq 20: blocks a and b were committed, their events are to come.
        async () => [[block('a'), block('b'), block('x')]],
      );
      sequencer.track(CANVAS, 3);
      await sequencer.catchUp(CANVAS);
      sequencer.receive('blocks_bulk_added_chunk', chunk(21, ['a', 'b']));
      sequencer.receive('blocks_bulk_added_chunk', chunk(22, ['c', 'd']));
      sequencer.receive('block_added', { canvasId: CANVAS, block: block('x'), seq: 23 } as never);
      sequencer.receive('blocks_bulk_added_chunk', chunk(24, ['b', 'e']));
      expect(handed).toEqual(['blocks_bulk_added_chunk 22 [c,d]', 'blocks_bulk_added_chunk 24 [e]']);
      // Every seq counts, handed on or not.
      expect(sequencer.lastSeq(CANVAS)).toBe(24);
    });

    test('a block deleted after the reload and restored (undo, redo) is handed on again', async () => {
      const handed: string[] = [];
      const sequencer = new CanvasSequencer(
        async (): Promise<SyncAck> => ({ ok: true, resync: false, events: [], lastSeq: 5 }),
        (event) => handed.push(describeEvent(event)),
        () => undefined,
      );
      sequencer.track(CANVAS, 5);
      await sequencer.load(CANVAS, async () => [block('a'), block('b')]);
      sequencer.receive('generation_undone', { canvasId: CANVAS, generationId: 'g1', blockIds: ['a'], keptBlockIds: [], seq: 6 } as never);
      sequencer.receive('generation_redone', { canvasId: CANVAS, generationId: 'g1', blocks: [block('a'), block('b')], seq: 7 } as never);
      sequencer.receive('block_deleted', { canvasId: CANVAS, blockId: 'b', seq: 8 } as never);
      sequencer.receive('block_added', { canvasId: CANVAS, block: block('b'), seq: 9 } as never);
      expect(handed).toEqual(['generation_undone 6 []', 'generation_redone 7 [a]', 'block_deleted 8 [b]', 'block_added 9 [b]']);
    });

    test('a load or reload that resolves with nothing leaves every event as it came', async () => {
      const handed: string[] = [];
      const sequencer = new CanvasSequencer(
        async (): Promise<SyncAck> => ({ ok: true, resync: true, lastSeq: 2 }),
        (event) => handed.push(describeEvent(event)),
        async () => undefined,
      );
      sequencer.track(CANVAS, 0);
      await sequencer.load(CANVAS, async () => undefined);
      await sequencer.catchUp(CANVAS);
      sequencer.receive('blocks_bulk_added_chunk', chunk(3, ['a']));
      expect(handed).toEqual(['blocks_bulk_added_chunk 3 [a]']);
    });
  });

  test('an untracked canvas is ignored', () => {
    const { handed, live } = given([]);
    live(1);
    expect(handed).toEqual([]);
  });
});
