// The prompt box: POST generate-stream, show its SSE progress as it arrives (resuming a dropped
// stream with Last-Event-ID), stop it, undo (asking first when edited blocks are involved) and redo.
// Viewers get it disabled, with the reason. The tab remembers its last generation per canvas
// (sessionStorage, which outlives a reload): reopened, the panel follows it again while it runs
// (with Stop), or offers its undo; without one it offers the undo of the newest AI generation whose
// blocks are on the canvas.
import { blockSummary, el } from './blocks.js';
import { pause, readEventStream } from './event-stream.js';
import { askUndoEdited } from './undo-dialog.js';

const $ = (id) => document.querySelector(`[data-testid="${id}"]`);

/**
 * Resuming a dropped stream: 0.5 s doubling to 4 s apart; up to 6 tries without progress that the
 * server answered, and while the server cannot be reached at all (offline, a laptop asleep), for up
 * to 10 minutes without progress.
 */
const RESUME_ATTEMPTS = 6;
const RESUME_DELAY_MS = 500;
const RESUME_MAX_DELAY_MS = 4_000;
const RESUME_OFFLINE_MS = 10 * 60_000;

/** An answer of the API (4xx/5xx), as opposed to a network failure (no status, or the SDK's 0). */
const isHttpError = (error) => typeof error?.status === 'number' && error.status >= 400;

/** This tab's last generation on a canvas: kept across reloads, forgotten with the tab. */
const remembered = {
  key: (canvasId) => `switchboard.generation.${canvasId}`,
  get(canvasId) {
    try {
      return sessionStorage.getItem(this.key(canvasId));
    } catch {
      return null;
    }
  },
  set(canvasId, generationId) {
    try {
      sessionStorage.setItem(this.key(canvasId), generationId);
    } catch {
      // Storage refused (private mode, quota): the panel still works, only not across a reload.
    }
  },
};

const STAGE_TEXT = {
  queued: 'Queued…',
  thinking: 'Thinking…',
  tool: 'Writing blocks…',
  persisting: 'Saving…',
  broadcasting: 'Sending to everyone…',
};

export class GeneratePanel {
  constructor({ api, view, notify }) {
    this.api = api;
    this.view = view;
    this.notify = notify;
    this.generationId = null;
    this.controller = null;
    /** Set while the tab cannot reach the server (the socket is down): Generate waits for it. */
    this.offline = false;
    /** Set while this panel starts or reads a generation (Generate stays disabled). */
    this.busy = false;
    /** The generation whose stream this panel reads now (null when none). */
    this.following = null;
    /** Called with each generation this panel takes up (app.js: the banner then leaves it alone). */
    this.onAdopt = null;
    $('generate-form').addEventListener('submit', (event) => {
      event.preventDefault();
      void this.generate();
    });
    // Ctrl/Cmd+Enter in the prompt submits, as in most chat boxes.
    $('prompt-input').addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) $('generate-form').requestSubmit();
    });
    $('undo-button').addEventListener('click', () => void this.undo());
    $('redo-button').addEventListener('click', () => void this.redo());
    $('stop-button').addEventListener('click', () => void this.stop());
  }

  /**
   * The Stop button shows while a generation runs, in the Generate button's place (which is of no use
   * then): the row keeps its width, so the side panel and the page do not move.
   */
  showStop(running) {
    const button = $('stop-button');
    const generate = $('generate-button');
    const hadFocus = document.activeElement === (running ? generate : button);
    button.hidden = !running;
    button.disabled = false;
    generate.hidden = running;
    if (hadFocus) (running ? button : generate).focus();
  }

  /** Forgets the last generation (another canvas was opened). */
  reset() {
    this.controller?.abort();
    this.busy = false;
    this.generationId = null;
    this.following = null;
    this.undoneId = null;
    this.showStop(false);
    this.view.clearDrafts();
    $('undo-button').disabled = true;
    $('redo-button').disabled = true;
    $('generation-state').textContent = '';
    $('generation-log').replaceChildren();
  }

  log(event, text, extra) {
    const item = el(
      'li',
      { dataset: { testid: 'generation-event', event } },
      el('span', { class: `tag tag-${event}` }, event.replace('_', ' ')),
      ' ',
      text,
      extra ?? null,
    );
    $('generation-log').append(item);
    item.scrollIntoView({ block: 'nearest' });
  }

  async generate() {
    const canvasId = this.view.canvasId;
    const prompt = $('prompt-input').value.trim();
    if (!canvasId || !prompt || !this.mayGenerate()) return;
    this.reset();
    const button = $('generate-button');
    button.disabled = true;
    this.busy = true;
    const state = $('generation-state');
    state.textContent = 'Starting…';
    this.controller = new AbortController();
    const signal = this.controller.signal;
    const stream = this.inOrder();
    try {
      try {
        const response = await this.api.stream(`/canvases/${canvasId}/ai/generate-stream`, { prompt }, stream.onMessage, signal);
        if (!this.generationId) this.adopt(response.headers.get('X-Generation-Id'));
      } catch (error) {
        // An answer of the API (429, 422…) or a stop: as before. A dropped connection after the
        // generation started: resumed below.
        if (error.name === 'AbortError' || isHttpError(error) || !this.generationId) throw error;
      }
      const finished = stream.finished || (await this.resume(canvasId, stream));
      if (!finished) {
        this.view.clearDrafts();
        state.textContent = 'The connection dropped and could not be resumed; the result will still reach the canvas.';
        this.log('error', 'stream lost');
      }
    } catch (error) {
      if (error.name === 'AbortError') return;
      this.view.clearDrafts();
      const wait = error.status === 429 ? ' (rate limited: try again shortly)' : '';
      state.textContent = `Failed: ${error.message}${wait}`;
      this.log('error', `${error.code ?? 'error'}: ${error.message}`);
    } finally {
      this.busy = false;
      button.disabled = !this.mayGenerate();
      this.following = null;
      this.showStop(false);
    }
  }

  /** The generation this panel runs now, remembered for this canvas across a reload of the tab. */
  adopt(generationId) {
    if (!generationId) return;
    this.generationId = generationId;
    this.following = generationId;
    if (this.view.canvasId) remembered.set(this.view.canvasId, generationId);
    this.onAdopt?.(generationId);
  }

  /** Whether the panel shows `generationId` itself, running or ended (the banner then leaves it alone). */
  follows(generationId) {
    return Boolean(generationId) && (generationId === this.generationId || generationId === this.undoneId);
  }

  /**
   * A canvas was opened: picks up this tab's last generation on it (still running: its events are
   * read again from the start, with Stop; completed: its undo), else offers the undo of the newest
   * AI generation whose blocks are on the canvas. Viewers get neither.
   */
  async restore(canvasId) {
    if (this.view.role === 'viewer' || this.generationId) return;
    const mine = remembered.get(canvasId);
    let generation = null;
    if (mine) {
      try {
        ({ generation } = await this.api.get(`/canvases/${canvasId}/ai/generations/${mine}`));
      } catch (error) {
        // Gone or unreadable: the newest AI generation on the canvas is offered instead (below).
        console.warn('Could not read this tab’s last generation:', error.message);
      }
    }
    if (this.view.canvasId !== canvasId || this.generationId) return;
    if (generation && (generation.status === 'queued' || generation.status === 'running')) return this.follow(canvasId, generation.id);
    if (generation?.status === 'undone') {
      this.undoneId = generation.id;
      $('redo-button').disabled = false;
      $('generation-state').textContent = 'Your last generation here was undone: Redo puts its blocks back.';
      return;
    }
    // Its own last generation, unless none of its blocks is left (people deleted them): nothing to undo.
    const last = generation?.status === 'completed' && this.blocksOf(generation.id) > 0 ? generation.id : this.newestOnCanvas();
    if (!last) return;
    this.generationId = last;
    $('undo-button').disabled = false;
    $('generation-state').textContent = `Undo removes the last AI generation here (${this.blocksOf(last)} block(s) on the canvas).`;
  }

  /** How many blocks of `generationId` are on the canvas. */
  blocksOf(generationId) {
    return [...this.view.blocks.values()].filter((block) => block.generationSessionId === generationId).length;
  }

  /** The generation of the newest AI-written block on the canvas, if any. */
  newestOnCanvas() {
    let newest = null;
    for (const block of this.view.blocks.values())
      if (block.generationSessionId && (!newest || block.createdAt > newest.createdAt)) newest = block;
    return newest?.generationSessionId ?? null;
  }

  /** Reads a running generation's events from the start (as after a reload), with Stop, until it ends. */
  async follow(canvasId, generationId) {
    this.controller = new AbortController();
    const signal = this.controller.signal;
    this.adopt(generationId);
    this.showStop(true);
    this.busy = true;
    $('generate-button').disabled = true;
    $('generation-state').textContent = 'Your generation is still running…';
    this.log('resumed', 'following your running generation again');
    const stream = this.inOrder();
    try {
      try {
        await readEventStream(this.api, `/canvases/${canvasId}/ai/generations/${generationId}/events`, {
          signal,
          onMessage: stream.onMessage,
        });
      } catch (error) {
        if (error.name === 'AbortError' || isHttpError(error)) throw error;
      }
      const finished = stream.finished || (await this.resume(canvasId, stream));
      if (!finished) $('generation-state').textContent = 'Its events could not be read; the result will still reach the canvas.';
    } catch (error) {
      if (error.name !== 'AbortError') $('generation-state').textContent = `Could not follow it: ${error.message}`;
    } finally {
      if (this.following === generationId) {
        this.following = null;
        this.busy = false;
        this.showStop(false);
        $('generate-button').disabled = !this.mayGenerate();
      }
    }
  }

  /** A stream's reader: each message applied once, in order (`id` is the generation's event sequence). */
  inOrder() {
    const stream = {
      lastId: 0,
      finished: false,
      onMessage: (message) => {
        const seq = Number(message.id);
        if (message.id !== undefined && Number.isSafeInteger(seq)) {
          if (seq <= stream.lastId) return;
          stream.lastId = seq;
        }
        stream.finished = this.onMessage(message) || stream.finished;
      },
    };
    return stream;
  }

  /**
   * The stream ended before a terminal event: reopen it at the events route with `Last-Event-ID`
   * (the server replays what came after it, then follows live; the transport renews an access
   * token that expired meanwhile), with backoff; the count starts over whenever a try brought new
   * events. True when the generation reached its end.
   */
  async resume(canvasId, stream) {
    const generationId = this.generationId;
    if (!generationId) return false;
    let answered = 0;
    let tries = 0;
    let progressAt = Date.now();
    while (!stream.finished) {
      const from = stream.lastId;
      $('generation-state').textContent = 'Connection lost: resuming…';
      await pause(Math.min(RESUME_MAX_DELAY_MS, RESUME_DELAY_MS * 2 ** Math.min(tries, 4)), this.controller.signal);
      if (this.generationId !== generationId) return false;
      this.log('resumed', `reconnecting after event ${from}`);
      let unreachable = false;
      try {
        await readEventStream(this.api, `/canvases/${canvasId}/ai/generations/${generationId}/events`, {
          lastEventId: from,
          signal: this.controller.signal,
          onMessage: stream.onMessage,
        });
      } catch (error) {
        if (error.name === 'AbortError') throw error;
        // The generation is gone or not ours to see: no point retrying.
        if (isHttpError(error) && error.status !== 429 && error.status < 500) return false;
        unreachable = !isHttpError(error);
      }
      if (stream.lastId > from) {
        answered = 0;
        tries = 0;
        progressAt = Date.now();
        continue;
      }
      tries += 1;
      if (!unreachable) answered += 1;
      if (answered >= RESUME_ATTEMPTS || Date.now() - progressAt > RESUME_OFFLINE_MS) break;
    }
    return stream.finished;
  }

  /**
   * Asks the server to stop the running generation. The stream itself then ends with `cancelled`
   * (from whichever node and worker run it); a 409 means it ended first.
   */
  async stop() {
    const canvasId = this.view.canvasId;
    if (!canvasId || !this.generationId) return;
    const button = $('stop-button');
    button.disabled = true;
    $('generation-state').textContent = 'Stopping…';
    try {
      await this.api.post(`/canvases/${canvasId}/ai/generations/${this.generationId}/cancel`);
    } catch (error) {
      if (error.status !== 409) button.disabled = false;
      $('generation-state').textContent = error.status === 409 ? 'It had already finished.' : `Stop failed: ${error.message}`;
    }
  }

  /** Applies one SSE message; true when it ended the generation. */
  onMessage({ event, data }) {
    const state = $('generation-state');
    if (data?.generationId && data.generationId !== this.generationId) this.adopt(data.generationId);
    if (event === 'status' && this.controller && !this.controller.signal.aborted) this.showStop(true);
    switch (event) {
      case 'status':
        state.textContent = STAGE_TEXT[data.stage] ?? data.stage;
        this.log('status', data.stage);
        return false;
      case 'tool_output':
        this.view.showDraft(data.index, data.block);
        this.log('tool_output', `#${data.index + 1} ${data.block.type}: `, el('span', { class: 'summary' }, blockSummary(data.block)));
        return false;
      case 'rollback':
        // A model failed mid-turn and the next one redoes it: its drafts from `fromIndex` on go.
        this.view.dropDrafts(data.fromIndex);
        this.log('rollback', `drafts from #${data.fromIndex + 1} discarded (the model is retried)`);
        return false;
      case 'complete':
        state.textContent = `Done: ${data.blocks.length} block(s)${data.truncated ? ' (truncated at the limit)' : ''}.`;
        this.log('complete', `${data.blocks.length} block(s) saved`);
        this.view.clearDrafts();
        // The room broadcast brings the same blocks; applying them now shows them without waiting.
        if (this.view.canvasId === data.blocks[0]?.canvasId) this.view.upsert(data.blocks);
        $('undo-button').disabled = data.blocks.length === 0;
        return true;
      case 'cancelled':
        // Stopped (here, in another tab, or by another editor): nothing of it was saved.
        this.view.clearDrafts();
        state.textContent = 'Stopped: nothing was saved.';
        this.log('cancelled', 'stopped before anything was saved');
        this.showStop(false);
        return true;
      case 'error':
        this.view.clearDrafts();
        state.textContent = `Failed: ${data.message}`;
        this.log('error', `${data.code}: ${data.message}`);
        return true;
      default:
        return false;
    }
  }

  /** Editors and owners generate, while the server can be reached. */
  mayGenerate() {
    return this.view.role !== 'viewer' && !this.offline;
  }

  /**
   * Offline (the socket is down: no network, the server away), Generate is disabled and says why;
   * it comes back with the connection. A generation already running keeps its Stop.
   */
  setOffline(offline) {
    this.offline = offline;
    const button = $('generate-button');
    button.title = offline ? 'Offline: Generate comes back when the connection does' : '';
    if (!this.busy) button.disabled = !this.mayGenerate();
  }

  /** Editors and owners generate; a viewer sees the controls disabled, and why. */
  setRole(role) {
    const reader = role === 'viewer';
    $('prompt-input').disabled = reader;
    $('generate-button').disabled = !this.mayGenerate();
    $('generate-readonly').hidden = !reader;
    $('undo-button').hidden = reader;
    $('redo-button').hidden = reader;
  }

  /**
   * Undoes the last generation. The API is asked to refuse when people edited some of its blocks
   * (`askIfEdited`); the user then chooses to keep those or remove them too.
   */
  async undo() {
    const canvasId = this.view.canvasId;
    const generationId = this.generationId;
    if (!canvasId || !generationId) return;
    const button = $('undo-button');
    const url = `/canvases/${canvasId}/ai/generations/${generationId}/undo`;
    button.disabled = true;
    try {
      let result;
      try {
        result = await this.api.post(url, { askIfEdited: true });
      } catch (error) {
        if (error.code !== 'edited_blocks') throw error;
        const choice = await askUndoEdited(error.details?.editedBlockIds ?? [], this.view.blocks);
        if (!choice) {
          $('generation-state').textContent = 'Undo cancelled: nothing changed.';
          button.disabled = false;
          return;
        }
        result = await this.api.post(url, choice === 'force' ? { force: true } : {});
      }
      const { blockIds, keptBlockIds } = result;
      this.view.remove(blockIds);
      // Blocks people edited since the generation stay on the canvas unless forced.
      const kept = keptBlockIds.length ? `, ${keptBlockIds.length} edited block(s) kept` : '';
      $('generation-state').textContent = `Undone: ${blockIds.length} block(s) removed${kept}.`;
      this.log('undone', `${blockIds.length} block(s) removed${kept}`);
      this.generationId = null;
      this.undoneId = generationId;
      $('redo-button').disabled = blockIds.length === 0;
    } catch (error) {
      $('generation-state').textContent = `Undo failed: ${error.message}`;
      button.disabled = error.status === 409;
    }
  }

  /** Puts back what the undo removed (same ids and places), once. */
  async redo() {
    const canvasId = this.view.canvasId;
    const generationId = this.undoneId;
    if (!canvasId || !generationId) return;
    const button = $('redo-button');
    button.disabled = true;
    try {
      const { blocks } = await this.api.post(`/canvases/${canvasId}/ai/generations/${generationId}/redo`);
      this.view.upsert(blocks);
      $('generation-state').textContent = `Redone: ${blocks.length} block(s) back.`;
      this.log('redone', `${blocks.length} block(s) back`);
      this.undoneId = null;
      this.generationId = generationId;
      $('undo-button').disabled = false;
    } catch (error) {
      const why = error.code === 'redo_conflict' ? 'the canvas has changed where those blocks stood' : error.message;
      $('generation-state').textContent = `Redo failed: ${why}`;
      button.disabled = error.status === 409;
    }
  }
}
