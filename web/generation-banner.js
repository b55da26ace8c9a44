// "Ada is generating…": what a collaborator's generation is doing, from the room's events
//: `generation_status {generationId, stage}` for its stages, then one
// `blocks_bulk_added_chunk {chunkIndex, chunkCount}` per chunk, drawn as a progress bar. Who
// started it comes from `GET …/ai/generations/:id` (its `userId`) and the member list. The
// requester's own tab shows its progress in the Generate panel instead.
//
// A generation that fails says so (`stage: "failed"`) and the banner hides; one whose worker died
// sends nothing, so when a shown generation is quiet for a while the banner asks its status, and
// hides once it has ended.

const $ = (id) => document.querySelector(`[data-testid="${id}"]`);

const STAGE_TEXT = {
  queued: 'is about to generate…',
  thinking: 'is generating…',
  tool: 'is generating…',
  persisting: 'is saving the blocks…',
  broadcasting: 'is sending the blocks…',
};
const QUIET_MS = 8_000;
const DONE_SHOWN_MS = 2_500;
const ENDED = new Set(['completed', 'failed', 'cancelled', 'undone']);

export class GenerationBanner {
  constructor({ api, view }) {
    this.api = api;
    this.view = view;
    /** generationId → {userId, name, stage, chunksDone, chunkCount} */
    this.shown = new Map();
    this.timers = new Map();
    view.roomListeners.push((event, payload) => this.onRoomEvent(event, payload));
  }

  reset() {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.shown.clear();
    this.render();
  }

  onRoomEvent(event, p) {
    if (event === 'generation_status') {
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

  /** Applies `change` to the generation's entry, learning who started it the first time. */
  async update(generationId, change) {
    let entry = this.shown.get(generationId);
    if (!entry) {
      entry = { userId: null, name: null, stage: 'queued', chunksDone: 0, chunkCount: 0, done: false, loading: null };
      this.shown.set(generationId, entry);
      entry.loading = this.identify(generationId, entry);
    }
    change(entry);
    await entry.loading;
    if (this.shown.get(generationId) !== entry) return;
    // Mine: the Generate panel shows it.
    if (entry.userId === this.api.user?.id) return this.end(generationId);
    this.render();
    this.watch(generationId, entry.done ? DONE_SHOWN_MS : QUIET_MS, entry.done);
  }

  async identify(generationId, entry) {
    const canvasId = this.view.canvasId;
    try {
      const { generation } = await this.api.get(`/canvases/${canvasId}/ai/generations/${generationId}`);
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

  end(generationId) {
    clearTimeout(this.timers.get(generationId));
    this.timers.delete(generationId);
    if (this.shown.delete(generationId)) this.render();
  }

  render() {
    const banner = $('collab-generation');
    // Others' generations only (mine, or not yet identified, stay hidden).
    const entries = [...this.shown.entries()].filter(([, entry]) => entry.userId && entry.userId !== this.api.user?.id);
    banner.hidden = entries.length === 0;
    if (entries.length === 0) return;
    const [generationId, entry] = entries.at(-1);
    const who = entry.name ?? 'A collaborator';
    const text = entry.done ? `${who}'s blocks are all here.` : `${who} ${STAGE_TEXT[entry.stage] ?? 'is generating…'}`;
    $('collab-generation-text').textContent = entries.length > 1 ? `${text} (+${entries.length - 1} more)` : text;
    banner.dataset.generationId = generationId;
    banner.dataset.stage = entry.done ? 'done' : entry.stage;
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
    progress.setAttribute('aria-label', `${who}'s generation`);
  }
}
