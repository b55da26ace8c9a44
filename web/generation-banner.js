// "Ada is generating…": what a collaborator's generation is doing, from the room's events
//: `generation_status {generationId, stage}` for its stages, then one
// `blocks_bulk_added_chunk {chunkIndex, chunkCount}` per chunk, drawn as a progress bar. Who
// started it comes from `GET …/ai/generations/:id` (its `userId`) and the member list. The tab
// whose Generate panel follows a generation shows it there instead; one's own generation started
// elsewhere (another tab) shows here as "You are generating…".
//
// Stop: the requester, an editor or an owner may stop a generation while it is still writing
// (queued, thinking, tool); a viewer is offered no Stop for someone else's.
//
// A tab that opens the canvas mid-generation (a reload, a phone picked up) would hear of it only at
// its next stage, minutes away for a long one: on joining, it reads the room's recent events for
// generations still being written, and shows those the server says are still running.
//
// A generation that fails says so (`stage: "failed"`) and the banner hides; one whose worker died
// sends nothing, so when a shown generation is quiet for a while the banner asks its status, and
// hides once it has ended.

const $ = (id) => document.querySelector(`[data-testid="${id}"]`);

const STAGE_TEXT = {
  queued: 'about to generate…',
  thinking: 'generating…',
  tool: 'generating…',
  persisting: 'saving the blocks…',
  broadcasting: 'sending the blocks…',
};
/** Stages in which a cancel can still stop the generation (after them its blocks are being saved). */
const STOPPABLE = new Set(['queued', 'thinking', 'tool']);
const QUIET_MS = 8_000;
const DONE_SHOWN_MS = 2_500;
const ENDED = new Set(['completed', 'failed', 'cancelled', 'undone']);
/** How far back, in room events, a tab that just joined looks for generations under way. */
const LOOK_BACK_EVENTS = 200;

export class GenerationBanner {
  /** `follows(generationId)`: whether this tab's Generate panel shows that generation itself. */
  constructor({ api, view, notify, follows }) {
    this.api = api;
    this.view = view;
    this.notify = notify;
    this.follows = follows;
    /** generationId → {userId, name, stage, chunksDone, chunkCount} */
    this.shown = new Map();
    this.timers = new Map();
    view.roomListeners.push((event, payload) => this.onRoomEvent(event, payload));
    view.joinListeners.push((canvasId, seq) => void this.lookBack(canvasId, seq));
    $('collab-generation-stop').addEventListener('click', () => void this.stop());
  }

  reset() {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.shown.clear();
    this.render();
  }

  onRoomEvent(event, p) {
    if (event === 'generation_status') {
      if (p.stage === 'cancelled' && this.shown.get(p.generationId)?.stopping)
        this.notify(`${this.who(this.shown.get(p.generationId))} generation was stopped: nothing of it was saved.`);
      if (p.stage === 'cancelled' || p.stage === 'failed') return this.end(p.generationId);
      void this.update(p.generationId, (entry) => (entry.stage = p.stage));
    } else if (event === 'blocks_bulk_added_chunk') {
      void this.update(p.generationId, (entry) => {
        entry.stage = 'broadcasting';
        entry.chunkCount = p.chunkCount;
        entry.chunksDone = Math.max(entry.chunksDone, p.chunkIndex + 1);
        if (entry.chunksDone >= entry.chunkCount) entry.done = true;
      });
    } else if (event === 'generation_undone') {
      this.end(p.generationId);
    }
  }

  /**
   * The canvas was just joined: the generations whose last stage in the room's recent events could
   * still be stopped, and that the server says still run, are shown as if their events had come live.
   */
  async lookBack(canvasId, seq) {
    const stages = new Map();
    for (const { event, payload } of await this.view.eventsBefore(canvasId, seq, LOOK_BACK_EVENTS))
      if (event === 'generation_status') stages.set(payload.generationId, payload.stage);
    for (const [generationId, stage] of stages) {
      if (!STOPPABLE.has(stage) || this.shown.has(generationId) || this.follows(generationId)) continue;
      let generation;
      try {
        ({ generation } = await this.api.get(`/canvases/${canvasId}/ai/generations/${generationId}`));
      } catch (error) {
        // Unreadable now: shown at its next live stage instead.
        console.warn(`Could not read generation ${generationId}:`, error.message);
        continue;
      }
      if (this.view.canvasId !== canvasId) return;
      // A live event that came meanwhile knows its stage better.
      if (this.shown.has(generationId) || (generation.status !== 'queued' && generation.status !== 'running')) continue;
      void this.update(generationId, (entry) => (entry.stage = stage), generation);
    }
  }

  /**
   * Applies `change` to the generation's entry, learning who started it the first time (from
   * `known`, the generation's record, when the caller has it).
   */
  async update(generationId, change, known) {
    let entry = this.shown.get(generationId);
    if (!entry) {
      entry = { userId: null, name: null, stage: 'queued', chunksDone: 0, chunkCount: 0, done: false, loading: null };
      this.shown.set(generationId, entry);
      entry.loading = this.identify(generationId, entry, known);
    }
    change(entry);
    await entry.loading;
    if (this.shown.get(generationId) !== entry) return;
    // This tab's Generate panel shows it.
    if (this.follows(generationId)) return this.end(generationId);
    this.render();
    this.watch(generationId, entry.done ? DONE_SHOWN_MS : QUIET_MS, entry.done);
  }

  async identify(generationId, entry, known) {
    const canvasId = this.view.canvasId;
    try {
      const generation = known ?? (await this.api.get(`/canvases/${canvasId}/ai/generations/${generationId}`)).generation;
      entry.userId = generation.userId;
      entry.name = this.view.memberName?.(generation.userId) ?? null;
      if (ENDED.has(generation.status) && generation.status !== 'completed') entry.ended = true;
    } catch {
      entry.name = null;
    }
    if (entry.ended) this.end(generationId);
  }

  /** Hides `generationId` after `ms` (done), or asks its status after `ms` of quiet. */
  watch(generationId, ms, done) {
    clearTimeout(this.timers.get(generationId));
    this.timers.set(
      generationId,
      setTimeout(async () => {
        if (done) return this.end(generationId);
        const canvasId = this.view.canvasId;
        try {
          const { generation } = await this.api.get(`/canvases/${canvasId}/ai/generations/${generationId}`);
          if (ENDED.has(generation.status)) return this.end(generationId);
        } catch {
          return this.end(generationId);
        }
        if (this.shown.has(generationId)) this.watch(generationId, QUIET_MS, false);
      }, ms),
    );
  }

  /** Asks the server to stop the generation the banner shows; the room's `cancelled` then hides it. */
  async stop() {
    const generationId = $('collab-generation').dataset.generationId;
    const entry = this.shown.get(generationId);
    if (!entry || entry.stopping) return;
    entry.stopping = true;
    this.render();
    try {
      await this.api.post(`/canvases/${this.view.canvasId}/ai/generations/${generationId}/cancel`);
    } catch (error) {
      entry.stopping = false;
      if (error.status === 409) {
        this.notify('That generation had already ended.');
        return this.end(generationId);
      }
      this.notify(`Could not stop it: ${error.message}`, true);
      this.render();
    }
  }

  isMine(entry) {
    return entry.userId === this.api.user?.id;
  }

  /** "Ada's" or "Your", for the texts. */
  who(entry) {
    return this.isMine(entry) ? 'Your' : `${entry.name ?? 'A collaborator'}'s`;
  }

  end(generationId) {
    clearTimeout(this.timers.get(generationId));
    this.timers.delete(generationId);
    if (this.shown.delete(generationId)) this.render();
  }

  render() {
    const banner = $('collab-generation');
    // Identified generations that this tab's Generate panel does not show itself.
    const entries = [...this.shown.entries()].filter(([id, entry]) => entry.userId && !this.follows(id));
    banner.hidden = entries.length === 0;
    if (entries.length === 0) return;
    const [generationId, entry] = entries.at(-1);
    const mine = this.isMine(entry);
    const who = mine ? 'You' : (entry.name ?? 'A collaborator');
    const doing = `${who} ${mine ? 'are' : 'is'} ${STAGE_TEXT[entry.stage] ?? 'generating…'}`;
    const text = entry.done
      ? `${this.who(entry)} blocks are all here.`
      : entry.stopping
        ? `Stopping ${mine ? 'your' : `${who}'s`} generation…`
        : doing;
    $('collab-generation-text').textContent = entries.length > 1 ? `${text} (+${entries.length - 1} more)` : text;
    banner.dataset.generationId = generationId;
    banner.dataset.stage = entry.done ? 'done' : entry.stage;
    const stop = $('collab-generation-stop');
    stop.hidden = entry.done || !STOPPABLE.has(entry.stage) || !(mine || this.view.role === 'editor' || this.view.role === 'owner');
    stop.disabled = Boolean(entry.stopping);
    stop.setAttribute('aria-label', mine ? 'Stop your generation' : `Stop ${who}'s generation`);
    const progress = $('collab-generation-progress');
    const chunks = $('collab-generation-chunks');
    if (entry.chunkCount > 0) {
      progress.max = entry.chunkCount;
      progress.value = entry.chunksDone;
      chunks.textContent = `chunk ${entry.chunksDone} of ${entry.chunkCount}`;
    } else {
      // Before the first chunk: an indeterminate bar (no value attribute).
      progress.removeAttribute('value');
      chunks.textContent = '';
    }
    progress.setAttribute('aria-label', `${this.who(entry)} generation`);
  }
}
