// The open conversation's lifecycle on the Assistant page: conclude it (Resolve with an optional
// word on how, Escalate with a reason, or Pause), watch its ticket notes being written (`GET /chat/sessions/:id/documentation/stream`, JSON
// `{"type":"chunk","text"}` lines ending `[DONE]` or `[ERROR] …`), read them again whenever the
// session is reopened (`GET …/documentation`), copy them to the clipboard, and resume a resolved or
// paused session in a new chat that carries its notes (a paused one: its latest messages).
import { el } from './blocks.js';
import { readSse } from './sse.js';

const STATUS_TEXT = { active: 'Open', resolved: 'Resolved', escalated: 'Escalated', paused: 'Paused' };

/** Markdown notes as DOM: `## ` headings, `- ` list items, other lines as paragraphs (never innerHTML). */
export function notesBody(markdown) {
  const nodes = [];
  let list = null;
  for (const line of String(markdown).split('\n')) {
    const item = /^\s*[-*]\s+(.*)$/.exec(line);
    if (item) {
      list ??= el('ul');
      list.append(el('li', {}, item[1]));
      if (!nodes.includes(list)) nodes.push(list);
      continue;
    }
    list = null;
    const heading = /^#{1,6}\s+(.*)$/.exec(line);
    if (heading) nodes.push(el('h3', {}, heading[1]));
    else if (line.trim()) nodes.push(el('p', {}, line));
  }
  return nodes;
}

export class SessionNotes {
  /** `onResume(session, notes)` starts a new chat that carries a resolved session's notes. */
  constructor({ api, notify, onResume }) {
    this.api = api;
    this.notify = notify;
    this.onResume = onResume;
    this.session = null;
    this.markdown = '';
    this.controller = null;
    this.root = el(
      'section',
      { class: 'session-notes', hidden: true, dataset: { testid: 'assistant-session-panel' }, 'aria-label': 'This conversation' },
      el(
        'div',
        { class: 'row' },
        el('span', { class: 'badge', dataset: { testid: 'assistant-session-status' } }),
        el(
          'button',
          { type: 'button', class: 'secondary', hidden: true, dataset: { testid: 'assistant-resume' }, onclick: () => void this.resume() },
          'Resume in a new chat',
        ),
      ),
      el(
        'form',
        {
          class: 'resolve',
          hidden: true,
          dataset: { testid: 'assistant-resolve-form' },
          onsubmit: (e) => (e.preventDefault(), void this.resolve()),
        },
        el(
          'label',
          {},
          'How was it resolved? (optional) ',
          el('input', { maxlength: '4000', autocomplete: 'off', dataset: { testid: 'assistant-resolution' } }),
        ),
        el('button', { type: 'submit', dataset: { testid: 'assistant-resolve' } }, 'Resolve and write notes'),
      ),
      el(
        'form',
        {
          class: 'resolve',
          hidden: true,
          dataset: { testid: 'assistant-escalate-form' },
          onsubmit: (e) => (e.preventDefault(), void this.escalate()),
        },
        el(
          'label',
          {},
          'Escalate: why? ',
          el('input', { maxlength: '2000', autocomplete: 'off', required: true, dataset: { testid: 'assistant-escalate-reason' } }),
        ),
        el('button', { type: 'submit', class: 'secondary', dataset: { testid: 'assistant-escalate' } }, 'Escalate'),
        el(
          'button',
          { type: 'button', class: 'secondary', dataset: { testid: 'assistant-pause' }, onclick: () => void this.pause() },
          'Pause',
        ),
      ),
      el('p', { class: 'state', role: 'status', dataset: { testid: 'assistant-notes-state' } }),
      el('article', { class: 'notes', hidden: true, 'aria-label': 'Ticket notes', dataset: { testid: 'assistant-notes' } }),
      el(
        'button',
        { type: 'button', class: 'secondary', hidden: true, dataset: { testid: 'assistant-notes-copy' }, onclick: () => void this.copy() },
        'Copy to clipboard',
      ),
    );
  }

  $(id) {
    return this.root.querySelector(`[data-testid="${id}"]`);
  }

  /** Shows `session` (`{id, status, title}`), or hides the panel for a new, unsaved chat. */
  async show(session, { running = false } = {}) {
    if (session?.id !== this.session?.id) this.clear();
    this.session = session;
    this.root.hidden = !session;
    if (!session) return;
    this.$('assistant-session-status').textContent = STATUS_TEXT[session.status] ?? session.status;
    this.$('assistant-session-status').dataset.status = session.status;
    this.setRunning(running);
    if (session.status === 'resolved' && !this.controller && !this.markdown) await this.load();
  }

  /** The turn runs: no concluding meanwhile. Escalate and pause are offered until the session is resolved. */
  setRunning(running) {
    if (!this.session) return;
    const { status } = this.session;
    this.$('assistant-resolve-form').hidden = running || status === 'resolved';
    this.$('assistant-escalate-form').hidden = running || status === 'resolved';
    this.$('assistant-pause').hidden = status === 'paused';
    if (status === 'paused') this.$('assistant-resume').hidden = false;
  }

  clear() {
    this.controller?.abort();
    this.controller = null;
    this.markdown = '';
    this.$('assistant-notes').replaceChildren();
    this.$('assistant-notes').hidden = true;
    this.$('assistant-notes-state').textContent = '';
    this.$('assistant-resume').hidden = true;
    this.$('assistant-notes-copy').hidden = true;
    this.$('assistant-resolution').value = '';
    this.$('assistant-escalate-reason').value = '';
  }

  render(state) {
    const notes = this.$('assistant-notes');
    notes.hidden = !this.markdown;
    notes.dataset.state = state;
    notes.replaceChildren(...notesBody(this.markdown));
    this.$('assistant-resume').hidden = state !== 'ready' && this.session?.status !== 'paused';
    this.$('assistant-notes-copy').hidden = state !== 'ready' || !this.markdown;
  }

  /** Escalate (with the reason) or pause: the status changes, the conversation stays as it is. */
  async conclude(path, body, status) {
    const session = this.session;
    if (!session) return;
    try {
      await this.api.post(`/chat/sessions/${session.id}/${path}`, body);
      session.status = status;
      await this.show(session);
      this.$('assistant-notes-state').textContent =
        status === 'paused' ? 'Paused: resume it in a new chat whenever you like.' : 'Escalated.';
    } catch (error) {
      this.$('assistant-notes-state').textContent = `Could not ${path}: ${error.message}`;
    }
  }

  escalate() {
    const reason = this.$('assistant-escalate-reason').value.trim();
    return this.conclude('escalate', reason ? { reason } : {}, 'escalated');
  }

  pause() {
    return this.conclude('pause', {}, 'paused');
  }

  /** The notes' markdown to the clipboard. */
  async copy() {
    try {
      await navigator.clipboard.writeText(this.markdown);
      this.$('assistant-notes-state').textContent = 'Copied to the clipboard.';
    } catch (error) {
      this.$('assistant-notes-state').textContent = `Could not copy: ${error.message}`;
    }
  }

  async resolve() {
    const session = this.session;
    if (!session) return;
    const summary = this.$('assistant-resolution').value.trim();
    const button = this.$('assistant-resolve');
    button.disabled = true;
    try {
      await this.api.post(`/chat/sessions/${session.id}/resolve`, summary ? { resolutionSummary: summary } : {});
      session.status = 'resolved';
      await this.show(session);
      this.markdown = '';
      await this.follow(session);
    } catch (error) {
      this.$('assistant-notes-state').textContent = `Could not resolve: ${error.message}`;
    } finally {
      button.disabled = false;
    }
  }

  /** The stored notes; notes still being written are followed live. */
  async load() {
    const session = this.session;
    try {
      const doc = await this.api.get(`/chat/sessions/${session.id}/documentation`);
      if (this.session !== session) return;
      if (doc.documentationStatus === 'ready') {
        this.markdown = doc.documentation ?? '';
        this.$('assistant-notes-state').textContent = '';
        this.render('ready');
      } else if (doc.documentationStatus === 'failed') {
        this.$('assistant-notes-state').textContent = 'Writing the notes failed: resolve again to retry.';
        this.$('assistant-resolve-form').hidden = false;
      } else await this.follow(session);
    } catch (error) {
      if (error.status !== 404) this.$('assistant-notes-state').textContent = `Could not read the notes: ${error.message}`;
    }
  }

  /** Streams the notes in as they are written. */
  async follow(session) {
    this.controller?.abort();
    const controller = (this.controller = new AbortController());
    const state = this.$('assistant-notes-state');
    state.textContent = 'Writing the notes…';
    this.render('streaming');
    let ended = false;
    try {
      const response = await this.api.authorizedFetch(`/chat/sessions/${session.id}/documentation/stream`, {
        headers: { accept: 'text/event-stream' },
        signal: controller.signal,
      });
      await readSse(response.body, ({ data }) => {
        if (data && typeof data === 'object' && data.type === 'chunk') {
          this.markdown += data.text;
          this.render('streaming');
        } else if (data === '[DONE]') {
          ended = true;
          state.textContent = '';
          this.render('ready');
        } else if (typeof data === 'string' && data.startsWith('[ERROR]')) {
          ended = true;
          state.textContent = `Writing the notes failed: ${data.slice(7).trim()}`;
          this.$('assistant-resolve-form').hidden = false;
          this.render('failed');
        }
      });
      if (!ended) state.textContent = 'The notes stream was cut; reopen the conversation to read them.';
    } catch (error) {
      if (error.name !== 'AbortError') state.textContent = `Could not follow the notes: ${error.message}`;
    } finally {
      if (this.controller === controller) this.controller = null;
    }
  }

  /** A resolved session resumes with its notes; a paused one with its latest messages. */
  async resume() {
    const session = this.session;
    if (!session) return;
    if (this.markdown) return this.onResume(session, this.markdown);
    if (session.status !== 'paused') return;
    try {
      const { messages } = await this.api.get(`/chat/sessions/${session.id}/history?limit=20`);
      const transcript = messages
        .filter((m) => m.role === 'user' || m.role === 'assistant')
        .map((m) => `${m.role === 'user' ? 'Engineer' : 'AI Assistant'}: ${m.content.slice(0, 500)}`)
        .join('\n');
      this.onResume(session, `Paused conversation:\n${transcript}`);
    } catch (error) {
      this.$('assistant-notes-state').textContent = `Could not resume: ${error.message}`;
    }
  }
}
