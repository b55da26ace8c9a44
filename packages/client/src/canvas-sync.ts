import type { CanvasLogEntry, CanvasRoomEventName, CanvasServerEvents, SyncAck } from './events';

/** A room event as handed to the application: in seq order, each exactly once. */
export type CanvasRoomEvent = {
  [E in CanvasRoomEventName]: { event: E; payload: Parameters<CanvasServerEvents[E]>[0] };
}[CanvasRoomEventName];

interface CanvasState {
  /** The last seq handed to the application. */
  last: number;
  /** Events that arrived ahead of a gap, by seq, until the gap is filled. */
  ahead: Map<number, CanvasLogEntry>;
  /** The sync under way, if any (callers asking meanwhile wait for it). */
  running?: Promise<void>;
  /** Another sync was asked for while one was running. */
  again: boolean;
  /** A gap waiting for its grace to pass before it is asked for. */
  gapTimer?: ReturnType<typeof setTimeout>;
  /**
   * The application is reloading the canvas after a `resync`: nothing is handed on until it is
   * done (an event applied before the reload's answer arrives would be wiped by it).
   */
  reloading: boolean;
  /**
   * Ids of the blocks the application's last load or reload returned, less those deleted since.
   * A block is stored before its room event gets a seq (the event follows the commit), so a load
   * read after the seq it started from may list blocks whose `block_added`,
   * `blocks_bulk_added_chunk` or `generation_redone` is still to come: those events are not handed
   * on again for blocks the application already holds.
   */
  held?: Set<string>;
}

/** The ids of what a load or reload resolved with, when that is blocks (`blocks.listAll`); else undefined. */
function blockIdsOf(loaded: unknown): Set<string> | undefined {
  const list = Array.isArray(loaded) ? (loaded as unknown[]).flat() : undefined;
  if (!list) return undefined;
  const ids = new Set<string>();
  for (const item of list) {
    const id = (item as { id?: unknown } | null)?.id;
    if (typeof id === 'string') ids.add(id);
  }
  return ids;
}

/**
 * How long a gap may stay open before the server is asked for it. Events of one canvas can reach a
 * client a few milliseconds out of seq order (a change's event gets its seq inside its database
 * transaction and is sent after the commit, while other events go out meanwhile): the missing event
 * is usually on its way, and asking at once would send every client of the canvas to the server at
 * the same moment. Each client waits this long plus up to as much again at random, so a gap every
 * client sees (an event never sent) does not bring them all at once either.
 */
export const GAP_GRACE_MS = 250;

/**
 * Exactly-once, in-order delivery of a canvas's room events over an unreliable path:
 * events are handed on by `seq`; a duplicate is dropped; a jump buffers what arrived and, when the
 * gap is still open after a short grace ({@link GAP_GRACE_MS}), asks the server (`canvas:sync`)
 * for what is missing; after any reconnect the caller calls `catchUp`. When
 * the server no longer keeps the missed events it answers `resync`, and the application reloads.
 * When a load or reload resolves with the blocks it read (what `blocks.listAll` gives), events that
 * would add a block it already holds leave that block out, and are not handed on when nothing is
 * left (their seq still counts).
 */
export class CanvasSequencer {
  private readonly canvases = new Map<string, CanvasState>();

  constructor(
    private readonly sync: (canvasId: string, afterSeq: number) => Promise<SyncAck>,
    private readonly deliver: (event: CanvasRoomEvent) => void,
    /** The application reloads the canvas; resolving with the blocks it read lets repeats be left out. */
    private readonly resync: (canvasId: string, lastSeq: number) => unknown,
    private readonly gapGraceMs = GAP_GRACE_MS,
  ) {}

  /** Start following a canvas from `seq` (the join ack's); a canvas already followed keeps its place. */
  track(canvasId: string, seq: number): void {
    if (!this.canvases.has(canvasId)) this.canvases.set(canvasId, { last: seq, ahead: new Map(), again: false, reloading: false });
  }

  /**
   * Runs the application's first load of a canvas just tracked (its blocks over HTTP, read after
   * the join): events that arrive meanwhile wait and are handed on after it, in order. When `load`
   * resolves with the blocks it read, events adding any of them are not handed on again.
   */
  async load(canvasId: string, load: () => unknown): Promise<void> {
    const state = this.canvases.get(canvasId);
    if (!state) return;
    state.reloading = true;
    try {
      state.held = blockIdsOf(await load());
    } finally {
      state.reloading = false;
    }
    if (this.canvases.get(canvasId) !== state) return;
    this.drain(state);
    // eslint-disable-next-line no-restricted-syntax -- a failed catch-up keeps the events held in `ahead`; the next event past the gap asks again
    if (state.ahead.size > 0) void this.catchUp(canvasId).catch(() => undefined);
  }

  untrack(canvasId: string): void {
    clearTimeout(this.canvases.get(canvasId)?.gapTimer);
    this.canvases.delete(canvasId);
  }

  tracked(): string[] {
    return [...this.canvases.keys()];
  }

  lastSeq(canvasId: string): number | undefined {
    return this.canvases.get(canvasId)?.last;
  }

  /** A live room event. */
  receive(event: CanvasRoomEventName, payload: { canvasId: string; seq?: number }): void {
    const state = this.canvases.get(payload.canvasId);
    if (!state || typeof payload.seq !== 'number') return;
    this.accept(payload.canvasId, state, { seq: payload.seq, event, payload });
  }

  /** Asks for everything after the last handed-on event (after a reconnect, or a gap). */
  catchUp(canvasId: string): Promise<void> {
    const state = this.canvases.get(canvasId);
    if (!state) return Promise.resolve();
    clearTimeout(state.gapTimer);
    state.gapTimer = undefined;
    if (state.running) {
      state.again = true;
      return state.running;
    }
    state.running = this.syncLoop(canvasId, state).finally(() => (state.running = undefined));
    return state.running;
  }

  /** Syncs until nothing is missing; a few rounds at most (each answer covers all the server had). */
  private async syncLoop(canvasId: string, state: CanvasState): Promise<void> {
    for (let round = 0; round < 5 && (round === 0 || state.again || state.ahead.size > 0); round += 1) {
      state.again = false;
      const ack = await this.sync(canvasId, state.last);
      if (this.canvases.get(canvasId) !== state || !ack.ok) return;
      if (ack.resync) {
        // The reload (read after this answer) holds every event up to lastSeq.
        await this.reload(canvasId, state, ack.lastSeq);
      } else {
        for (const entry of ack.events) this.accept(canvasId, state, entry, false);
      }
    }
  }

  /** The application reloads the canvas; what arrives meanwhile waits in `ahead` and is handed on after it, in order. */
  private async reload(canvasId: string, state: CanvasState, lastSeq: number): Promise<void> {
    state.reloading = true;
    // Events handed on while the sync was asked (a recovered connection's replay) are not handed on again.
    state.last = Math.max(state.last, lastSeq);
    try {
      // A reload that fails (a network blip) is tried again a few times before the held events go on.
      for (let attempt = 0; ; attempt += 1) {
        try {
          state.held = blockIdsOf(await this.resync(canvasId, lastSeq));
          break;
        } catch (error) {
          if (attempt >= 2 || this.canvases.get(canvasId) !== state) throw error;
          await new Promise((resolve) => setTimeout(resolve, 1_000 * (attempt + 1)));
        }
      }
    } finally {
      state.reloading = false;
      // Held events are never left behind, even when every attempt failed.
      if (this.canvases.get(canvasId) === state) this.drain(state);
    }
  }

  private accept(canvasId: string, state: CanvasState, entry: CanvasLogEntry, mayAsk = true): void {
    if (entry.seq <= state.last) return;
    if (state.reloading) return void state.ahead.set(entry.seq, entry);
    if (entry.seq > state.last + 1) {
      state.ahead.set(entry.seq, entry);
      if (mayAsk) this.askAfterGrace(canvasId, state);
      return;
    }
    this.handOn(state, entry);
    this.drain(state);
  }

  /** Asks for a gap once its grace has passed, unless the missing events arrived meanwhile. */
  private askAfterGrace(canvasId: string, state: CanvasState): void {
    if (state.gapTimer || state.running) return;
    const wait = this.gapGraceMs + Math.random() * this.gapGraceMs;
    state.gapTimer = setTimeout(() => {
      state.gapTimer = undefined;
      if (this.canvases.get(canvasId) !== state || state.ahead.size === 0) return;
      // eslint-disable-next-line no-restricted-syntax -- a failed catch-up keeps the events held in `ahead`; the next event past the gap asks again
      void this.catchUp(canvasId).catch(() => undefined);
    }, wait);
  }

  private drain(state: CanvasState): void {
    // Stops at a `blocks_reranked`: what follows it waits for the reload it starts.
    for (let next = state.ahead.get(state.last + 1); next && !state.reloading; next = state.ahead.get(state.last + 1)) {
      state.ahead.delete(next.seq);
      this.handOn(state, next);
    }
    for (const seq of state.ahead.keys()) if (seq <= state.last) state.ahead.delete(seq);
    if (state.ahead.size === 0 && state.gapTimer) {
      clearTimeout(state.gapTimer);
      state.gapTimer = undefined;
    }
  }

  private handOn(state: CanvasState, entry: CanvasLogEntry): void {
    state.last = entry.seq;
    const payload = state.held ? withoutHeld(state.held, entry) : entry.payload;
    if (payload) this.deliver({ event: entry.event, payload } as CanvasRoomEvent);
    // The canvas's ranks were rewritten (rule 5): reload as after `resync`; what follows waits for it.
    if (entry.event === 'blocks_reranked') {
      const canvasId = (entry.payload as { canvasId: string }).canvasId;
      state.reloading = true;
      // eslint-disable-next-line no-restricted-syntax -- the reload retries on its own and releases the held events in its finally: nothing is left to undo here
      void this.reload(canvasId, state, entry.seq).catch(() => undefined);
    }
  }
}

/**
 * `entry`'s payload without the blocks the application already holds (`held`), or undefined when
 * it only repeats them. Deletions take their blocks out of `held`: a block removed and then
 * restored (an undo, then a redo) is handed on again.
 */
function withoutHeld(held: Set<string>, entry: CanvasLogEntry): CanvasLogEntry['payload'] | undefined {
  const payload = entry.payload as { blocks?: Array<{ id: string }>; block?: { id: string }; blockId?: string; blockIds?: string[] };
  switch (entry.event) {
    case 'block_added':
      return payload.block && held.has(payload.block.id) ? undefined : entry.payload;
    case 'blocks_bulk_added_chunk':
    case 'generation_redone': {
      const blocks = payload.blocks ?? [];
      const fresh = blocks.filter((block) => !held.has(block.id));
      if (fresh.length === blocks.length) return entry.payload;
      return fresh.length > 0 ? ({ ...payload, blocks: fresh } as CanvasLogEntry['payload']) : undefined;
    }
    case 'block_deleted':
      if (payload.blockId) held.delete(payload.blockId);
      return entry.payload;
    case 'generation_undone':
      for (const id of payload.blockIds ?? []) held.delete(id);
      return entry.payload;
    default:
      return entry.payload;
  }
}
