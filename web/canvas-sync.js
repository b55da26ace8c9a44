// Exactly-once, in-order room events for the open canvas (docs/protocol.md, "Catch-up"):
// the SDK's CanvasSequencer (@switchboard/client, served built at /console/sdk/),
// following one canvas at a time. Events are applied by `seq`; a repeat is skipped; a jump holds
// what arrived and asks `canvas:sync` when the gap outlives a short grace; after every reconnect the view calls `catchUp`;
// `resync` reloads the blocks over HTTP, holding live events until the reload is in.
import { CANVAS_ROOM_EVENTS, CanvasSequencer } from '/console/sdk/switchboard-client.js';

export const ROOM_EVENTS = CANVAS_ROOM_EVENTS;

export class CanvasSync {
  /**
   * @param {object} deps
   * @param {(canvasId: string, afterSeq: number) => Promise<object>} deps.sync `canvas:sync` round trip
   * @param {(event: string, payload: object) => void} deps.apply hands one event to the view
   * @param {(canvasId: string) => Promise<void>} deps.reload loads the canvas's blocks over HTTP
   */
  constructor({ sync, apply, reload }) {
    /** `{canvasId, applied}` of the canvas followed, or null. */
    this.state = null;
    this.sequencer = new CanvasSequencer(
      async (canvasId, afterSeq) => {
        const ack = await sync(canvasId, afterSeq);
        const state = this.state;
        if (!ack?.ok && state?.canvasId === canvasId) {
          // rate_limited or a passing failure: ask again a little later (a reconnect asks anyway).
          setTimeout(() => this.state === state && void this.catchUp().catch(() => undefined), 1_000);
        }
        return ack ?? { ok: false, error: { code: 'no_answer' } };
      },
      ({ event, payload }) => {
        if (this.state) this.state.applied += 1;
        apply(event, payload);
      },
      (canvasId) => reload(canvasId),
    );
  }

  /** Follows `canvasId` from the join ack's `seq`; events wait until `loaded()` (the HTTP load). */
  start(canvasId, seq) {
    this.stop();
    let markLoaded;
    const loaded = new Promise((resolve) => (markLoaded = resolve));
    this.state = { canvasId, applied: 0, markLoaded };
    this.sequencer.track(canvasId, seq);
    void this.sequencer.load(canvasId, () => loaded);
  }

  /** The first load is in: apply what arrived meanwhile. */
  loaded() {
    this.state?.markLoaded();
  }

  stop() {
    if (!this.state) return;
    this.sequencer.untrack(this.state.canvasId);
    this.state.markLoaded();
    this.state = null;
  }

  get lastSeq() {
    return this.state ? this.sequencer.lastSeq(this.state.canvasId) : undefined;
  }

  /** Room events handed to the view since `start` (each exactly once). */
  get applied() {
    return this.state?.applied ?? 0;
  }

  /** A live room event. */
  receive(event, payload) {
    if (this.state && payload?.canvasId === this.state.canvasId) this.sequencer.receive(event, payload);
  }

  /** Asks for everything after the last applied event (after a reconnect, or a gap). */
  catchUp() {
    return this.state ? this.sequencer.catchUp(this.state.canvasId) : Promise.resolve();
  }
}
