// One room thread of the open canvas, followed from the canvas room as the SDK's followThread does
// (docs/room-threads.md): its history over HTTP, then the turns that have not ended replayed from
// their first event (`canvas:sync` from the turn's `roomSeq - 1`), then its live `thread_event`s.
// The canvas view hands on room events in seq order, exactly once, and catches up by itself after a
// reconnect; this keeps the thread's part of them, each once, and holds live events while it loads.

/** Every page of a session's history, oldest first (each page reads oldest → newest). */
export async function loadHistory(api, threadId) {
  const pages = [];
  let cursor;
  let first;
  do {
    const page = await api.get(`/chat/sessions/${threadId}/history${cursor ? `?cursor=${encodeURIComponent(cursor)}` : ''}`);
    first ??= page;
    pages.unshift(page.messages);
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return { session: first.session, messages: pages.flat() };
}

export class ThreadFeed {
  /**
   * @param {object} deps
   * @param {import('./api.js').Api} deps.api
   * @param {import('./canvas-view.js').CanvasView} deps.view room events in seq order (`roomListeners`), `sync.lastSeq`, `eventsBefore`
   * @param {(loaded: {thread: object, role: string, messages: object[]}) => void} deps.onLoad the thread, the caller's role and its history
   * @param {(payload: object) => void} deps.onEvent one `thread_event` of the followed thread, in seq order, once
   * @param {(payload: object) => void} deps.onOther a `thread_event` of another thread of the canvas (or of any, when none is followed)
   */
  constructor({ api, view, onLoad, onEvent, onOther }) {
    this.api = api;
    this.view = view;
    this.onLoad = onLoad;
    this.onEvent = onEvent;
    this.onOther = onOther;
    /** The open canvas whose thread events are read. */
    this.canvasId = null;
    /** `{canvasId, threadId, last, held, followed}` of the thread followed, or null. */
    this.state = null;
    view.roomListeners.push((event, payload) => event === 'thread_event' && this.receive(payload));
  }

  get threadId() {
    return this.state?.threadId ?? null;
  }

  /** Reads the thread events of `canvasId` (a thread of it is followed by `follow`). */
  watch(canvasId) {
    this.canvasId = canvasId;
    this.state = null;
  }

  stop() {
    this.watch(null);
  }

  /**
   * Follows `threadId` of the open canvas from now on: reads it and its history, replays its open
   * turns, then hands on what came meanwhile. Resolves false when another follow replaced it.
   */
  async follow(canvasId, threadId) {
    const state = { canvasId, threadId, last: 0, held: [], followed: new Set() };
    this.state = state;
    // Room events up to here reached the view before this thread was followed.
    const joinedSeq = this.view.sync.lastSeq ?? 0;
    const [{ thread, role, openTurns }, { messages }] = await Promise.all([
      this.api.get(`/canvases/${canvasId}/threads/${threadId}`),
      loadHistory(this.api, threadId),
    ]);
    if (this.state !== state) return false;
    this.onLoad({ thread, role, messages });
    for (const turn of openTurns) state.followed.add(turn.turnId);
    state.last = joinedSeq;
    const first = openTurns.map((turn) => turn.roomSeq).find((seq) => typeof seq === 'number');
    if (first !== undefined && first <= joinedSeq) {
      // A turn under way when the thread was opened: from its message on, as the room logged it.
      const replay = await this.view.eventsBefore(canvasId, joinedSeq, joinedSeq - first + 1);
      if (this.state !== state) return false;
      state.last = first - 1;
      for (const entry of replay)
        if (entry.event === 'thread_event' && state.followed.has(entry.payload.turnId)) this.handOn(state, entry.payload);
      state.last = Math.max(state.last, joinedSeq);
    }
    // Live events of turns open at the read or posted since; a turn that ended in between is in the history.
    const live = state.held;
    state.held = undefined;
    for (const payload of live) {
      if (payload.event.type === 'message') state.followed.add(payload.turnId);
      if (state.followed.has(payload.turnId) || payload.turnId === threadId) this.handOn(state, payload);
    }
    return true;
  }

  /** A `thread_event` of the open canvas, from the view. */
  receive(payload) {
    const state = this.state;
    if (payload.canvasId !== this.canvasId) return;
    if (payload.threadId !== state?.threadId) return this.onOther(payload);
    if (state.held) state.held.push(payload);
    else this.handOn(state, payload);
  }

  handOn(state, payload) {
    if (payload.threadId !== state.threadId || payload.seq <= state.last) return;
    state.last = payload.seq;
    this.onEvent(payload);
  }
}
