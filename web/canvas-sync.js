// Exactly-once, in-order room events for the open canvas (issue 16; docs/protocol.md, "Catch-up"):
// the console's port of the SDK's CanvasSequencer (src/client/canvas-sync.ts). Events are applied
// by `seq`; a repeat is skipped; a jump holds what arrived and asks `canvas:sync` at once; after
// every reconnect the view calls `catchUp`; `resync` reloads the blocks over HTTP, holding live
// events until the reload is in.

export const ROOM_EVENTS = ['block_added', 'block_updated', 'block_deleted', 'blocks_bulk_added_chunk', 'generation_status', 'generation_undone'];

export class CanvasSync {
  /**
   * @param {object} deps
   * @param {(canvasId: string, afterSeq: number) => Promise<object>} deps.sync `canvas:sync` round trip
   * @param {(event: string, payload: object) => void} deps.apply hands one event to the view
   * @param {(canvasId: string) => Promise<void>} deps.reload loads the canvas's blocks over HTTP
   */
  constructor({ sync, apply, reload }) {
    this.sync = sync;
    this.apply = apply;
    this.reload = reload;
    this.state = null;
  }

  /** Follows `canvasId` from the join ack's `seq`; events wait until `loaded()` (the HTTP load). */
  start(canvasId, seq) {
    this.state = { canvasId, last: seq, ahead: new Map(), holding: true, running: null, again: false, applied: 0 };
  }

  /** The first load is in: apply what arrived meanwhile. */
  loaded() {
    if (!this.state) return;
    this.state.holding = false;
    this.drain(this.state);
    if (this.state.ahead.size > 0) void this.catchUp().catch(() => undefined);
  }

  stop() {
    this.state = null;
  }

  get lastSeq() {
    return this.state?.last;
  }

  /** Room events handed to the view since `start` (each exactly once). */
  get applied() {
    return this.state?.applied ?? 0;
  }

  /** A live room event. */
  receive(event, payload) {
    const state = this.state;
    if (!state || payload?.canvasId !== state.canvasId || typeof payload.seq !== 'number') return;
    this.accept(state, { seq: payload.seq, event, payload }, true);
  }

  /** Asks for everything after the last applied event (after a reconnect, or a gap). */
  catchUp() {
    const state = this.state;
    if (!state) return Promise.resolve();
    if (state.running) {
      state.again = true;
      return state.running;
    }
    state.running = this.loop(state).finally(() => (state.running = null));
    return state.running;
  }

  async loop(state) {
    for (let round = 0; round < 5 && (round === 0 || state.again || state.ahead.size > 0); round += 1) {
      state.again = false;
      const ack = await this.sync(state.canvasId, state.last);
      if (this.state !== state) return;
      if (!ack?.ok) {
        // rate_limited or a passing failure: ask again a little later (a reconnect asks anyway).
        setTimeout(() => this.state === state && void this.catchUp().catch(() => undefined), 1_000);
        return;
      }
      if (ack.resync) {
        state.holding = true;
        state.last = ack.lastSeq;
        try {
          await this.reload(state.canvasId);
        } finally {
          state.holding = false;
        }
        if (this.state !== state) return;
        this.drain(state);
      } else {
        for (const entry of ack.events) this.accept(state, entry, false);
      }
    }
  }

  accept(state, entry, mayAsk) {
    if (entry.seq <= state.last) return;
    if (state.holding || entry.seq > state.last + 1) {
      state.ahead.set(entry.seq, entry);
      if (mayAsk && !state.holding) void this.catchUp().catch(() => undefined);
      return;
    }
    this.handOn(state, entry);
    this.drain(state);
  }

  drain(state) {
    for (let next = state.ahead.get(state.last + 1); next; next = state.ahead.get(state.last + 1)) {
      state.ahead.delete(next.seq);
      this.handOn(state, next);
    }
    for (const seq of state.ahead.keys()) if (seq <= state.last) state.ahead.delete(seq);
  }

  handOn(state, entry) {
    state.last = entry.seq;
    state.applied += 1;
    this.apply(entry.event, entry.payload);
  }
}
