// The Assistant page (`#/assistant`): chat with the assistant, with or without a device. A turn is
// `POST /chat/stream` read as SSE: `text_chunk` streams the answer in; `approval_requested` /
// `approval_resolved` show a dangerous tool call inline as "<tool> wants to <action>" with its
// arguments listed, and Approve and Reject (PUT /hitl/requests/:id/approve|reject); `final`,
// `error` or `cancelled` end it. Stop is `POST /chat/sessions/:id/cancel`. Conversations are the
// assistant's own (`GET /chat/sessions?kind=assistant`: chatflow sessions belong to their flows),
// reopened from their history; session-notes.js concludes one and shows its notes; task-lane.js keeps
// its tasks beside the chat.
import { el } from './blocks.js';
import { SessionNotes } from './session-notes.js';
import { TaskLane } from './task-lane.js';
import { argumentList, toolSentence } from './tool-sentences.js';

const $ = (id) => document.querySelector(`[data-testid="${id}"]`);

/** The context a resumed chat carries stays under the API's 8,000 characters of JSON (escapes included). */
const RESUME_CONTEXT_CHARS = 7_500;

const MODES = [
  ['auto', 'Automatic: my device when one is online'],
  ['device', 'With my device (its tasks, projects, notes)'],
  ['none', 'Without a device (plain assistant)'],
];

export class AssistantPanel {
  constructor({ api, socket, notify }) {
    this.api = api;
    this.notify = notify;
    this.sessionId = null;
    this.controller = null;
    /** Inline approval cards by approval id. */
    this.approvals = new Map();
    /** What a chat resumed from a resolved one sends as `context` with its first message. */
    this.resumeContext = null;
    this.notes = new SessionNotes({ api, notify, onResume: (session, notes) => this.resumeFrom(session, notes) });
    this.resumeBanner = el('p', { class: 'resume-banner', hidden: true, dataset: { testid: 'assistant-resume-banner' } });
    this.tasks = new TaskLane({ api, notify });
    $('assistant-log').before(this.notes.root, this.tasks.root, this.resumeBanner);
    $('assistant-send').after(this.tasks.pill);
    $('assistant-mode').replaceChildren(...MODES.map(([value, label]) => el('option', { value }, label)));
    $('assistant-form').addEventListener('submit', (event) => {
      event.preventDefault();
      void this.send();
    });
    $('assistant-input').addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey) {
        event.preventDefault();
        $('assistant-form').requestSubmit();
      }
    });
    $('assistant-stop').addEventListener('click', () => void this.stop());
    $('assistant-new').addEventListener('click', () => this.newConversation());
    // A decision made elsewhere (the Approvals panel, the device, a timeout) reaches this tab's socket too.
    socket.on('approval_resolved', (payload) => this.resolved(payload));
  }

  /** Shown: list the conversations (the open one stays). */
  async show() {
    await this.loadSessions();
    $('assistant-input').focus();
  }

  reset() {
    this.controller?.abort();
    this.sessionId = null;
    this.approvals.clear();
    this.resumeContext = null;
    this.resumeBanner.hidden = true;
    void this.notes.show(null);
    this.tasks.show(null);
    $('assistant-log').replaceChildren();
    $('assistant-session-list').replaceChildren();
    this.setRunning(false);
  }

  newConversation() {
    if (this.controller) return;
    this.sessionId = null;
    this.approvals.clear();
    this.resumeContext = null;
    this.resumeBanner.hidden = true;
    void this.notes.show(null);
    this.tasks.show(null);
    $('assistant-log').replaceChildren();
    $('assistant-state').textContent = '';
    this.markCurrent();
    $('assistant-input').focus();
  }

  /** A new chat that carries a resolved conversation's notes as its context (the model reads them every turn). */
  resumeFrom(session, notes) {
    if (this.controller) return;
    this.newConversation();
    const title = session.title || 'an earlier conversation';
    const context = (cut) => ({ resumedFrom: { sessionId: session.id, title: title.slice(0, 200), notes: notes.slice(0, cut) } });
    let cut = notes.length;
    while (cut > 0 && JSON.stringify(context(cut)).length > RESUME_CONTEXT_CHARS) cut -= 250;
    this.resumeContext = context(Math.max(cut, 0));
    this.resumeBanner.textContent = `Continues “${title}”: its notes go with your first message.`;
    this.resumeBanner.hidden = false;
  }

  setRunning(running) {
    $('assistant-send').disabled = running;
    $('assistant-stop').hidden = !running;
    $('assistant-stop').disabled = false;
    $('assistant-new').disabled = running;
    this.notes.setRunning(running);
  }

  async loadSessions() {
    try {
      const { sessions } = await this.api.get('/chat/sessions?kind=assistant&limit=20');
      $('assistant-session-list').replaceChildren(
        ...sessions.map((session) =>
          el(
            'li',
            { dataset: { testid: 'assistant-session', sessionId: session.id } },
            el(
              'button',
              { type: 'button', class: 'link-button', onclick: () => void this.open(session.id) },
              session.title || 'Conversation',
              ' ',
              el('span', { class: 'small' }, new Date(session.updatedAt).toLocaleString()),
            ),
          ),
        ),
      );
      if (sessions.length === 0) $('assistant-session-list').append(el('li', { class: 'small' }, 'No conversations yet.'));
      this.markCurrent();
    } catch (error) {
      this.notify(`Could not list conversations: ${error.message}`, true);
    }
  }

  markCurrent() {
    for (const item of document.querySelectorAll('[data-testid="assistant-session"]'))
      item.classList.toggle('current', item.dataset.sessionId === this.sessionId);
  }

  /** Reopens a conversation from its history. */
  async open(sessionId) {
    if (this.controller) return;
    try {
      const { session, messages } = await this.api.get(`/chat/sessions/${sessionId}/history`);
      this.sessionId = sessionId;
      this.approvals.clear();
      this.resumeContext = null;
      this.resumeBanner.hidden = true;
      void this.notes.show(session);
      this.tasks.show(session);
      $('assistant-state').textContent = '';
      $('assistant-log').replaceChildren(
        ...messages
          .filter((m) => m.role === 'user' || m.role === 'assistant')
          .map((m) => this.bubble(m.role, m.content, m.status === 'cancelled' ? 'cancelled' : 'done')),
      );
      this.markCurrent();
    } catch (error) {
      this.notify(`Could not open the conversation: ${error.message}`, true);
    }
  }

  bubble(role, text, status) {
    return el(
      'li',
      { class: `chat-message ${role}`, dataset: { testid: `${role}-message`, status } },
      el('span', { class: 'who' }, role === 'user' ? 'You' : 'Assistant'),
      el('div', { class: 'text' }, text),
    );
  }

  append(node) {
    $('assistant-log').append(node);
    node.scrollIntoView({ block: 'nearest' });
  }

  async send() {
    const input = $('assistant-input');
    const message = input.value.trim();
    if (!message || this.controller) return;
    const mode = $('assistant-mode').value;
    const body = { message };
    if (this.sessionId) body.sessionId = this.sessionId;
    if (mode !== 'auto') body.tools = mode;
    if (this.resumeContext && !this.sessionId) body.context = this.resumeContext;
    input.value = '';
    this.append(this.bubble('user', message, 'done'));
    const answer = this.bubble('assistant', '', 'streaming');
    const text = answer.querySelector('.text');
    this.append(answer);
    const state = $('assistant-state');
    state.textContent = 'Thinking…';
    this.controller = new AbortController();
    this.setRunning(true);
    let ended = false;
    try {
      const response = await this.api.stream(
        '/chat/stream',
        body,
        ({ event, data }) => {
          if (data?.sessionId && data.sessionId !== this.sessionId) {
            this.sessionId = data.sessionId;
          }
          switch (event) {
            case 'text_chunk':
              text.textContent += data.text;
              state.textContent = 'Answering…';
              break;
            case 'approval_requested':
              // Above the answer it holds up: the answer continues below once decided.
              answer.before(this.approvalCard(data));
              state.textContent = 'Waiting for your decision…';
              break;
            case 'approval_resolved':
              this.resolved(data);
              state.textContent = 'Thinking…';
              break;
            case 'final':
              ended = true;
              // The final answer is the whole text (chunks may have been partial).
              text.textContent = data.response;
              answer.dataset.status = 'done';
              state.textContent = usageText(data.usage);
              break;
            case 'cancelled':
              ended = true;
              text.textContent = data.response || text.textContent;
              answer.dataset.status = 'cancelled';
              answer.append(el('p', { class: 'small' }, 'Stopped.'));
              state.textContent = 'Stopped.';
              break;
            case 'error':
              ended = true;
              answer.dataset.status = 'error';
              text.textContent ||= '—';
              state.textContent = `Failed: ${data.message}`;
              break;
            default:
              break;
          }
        },
        this.controller.signal,
      );
      this.sessionId ??= response.headers.get('X-Chat-Session-Id');
      if (!ended) {
        answer.dataset.status = 'error';
        state.textContent = 'The answer stream was cut; reopen the conversation to see the stored answer.';
      }
    } catch (error) {
      if (error.name === 'AbortError') return;
      answer.dataset.status = 'error';
      state.textContent =
        error.code === 'device_offline'
          ? 'None of your devices is online: start your desktop app, or choose "Without a device".'
          : `Failed: ${error.message}${error.status === 429 ? ' (rate limited: try again shortly)' : ''}`;
      if (!text.textContent) answer.remove();
    } finally {
      this.controller = null;
      this.setRunning(false);
      void this.loadSessions();
      void this.refreshSession();
    }
  }

  /** The open session's status after a turn (its Resolve action). */
  async refreshSession() {
    const sessionId = this.sessionId;
    if (!sessionId) return;
    try {
      const { session } = await this.api.get(`/chat/sessions/${sessionId}`);
      if (this.sessionId === sessionId && !this.controller) {
        // The lane of a session already shown stays as it is here (its edits are saved as they happen).
        if (this.tasks.sessionId !== sessionId) this.tasks.show(session);
        await this.notes.show(session);
      }
    } catch {
      // the next open reads it again
    }
  }

  async stop() {
    if (!this.sessionId) return;
    $('assistant-stop').disabled = true;
    $('assistant-state').textContent = 'Stopping…';
    try {
      await this.api.post(`/chat/sessions/${this.sessionId}/cancel`);
    } catch (error) {
      if (error.status !== 409) $('assistant-stop').disabled = false;
      $('assistant-state').textContent = error.status === 409 ? 'It had already finished.' : `Stop failed: ${error.message}`;
    }
  }

  approvalCard(request) {
    const card = el(
      'li',
      { class: 'chat-approval', dataset: { testid: 'chat-approval', approvalId: request.approvalId, status: 'pending' } },
      toolSentence(request.toolName, request.parameters),
      argumentList(request.parameters, 'chat-approval-arguments'),
      el('p', { class: 'small' }, `${request.reason} · decide before ${new Date(request.expiresAt).toLocaleTimeString()}`),
      el(
        'div',
        { class: 'row' },
        el(
          'button',
          { type: 'button', dataset: { testid: 'chat-approve' }, onclick: () => void this.decide(request, 'approve') },
          'Approve',
        ),
        el(
          'button',
          { type: 'button', class: 'secondary', dataset: { testid: 'chat-reject' }, onclick: () => void this.decide(request, 'reject') },
          'Reject',
        ),
      ),
      el('p', { class: 'decision', dataset: { testid: 'chat-approval-status' } }),
    );
    this.approvals.set(request.approvalId, card);
    return card;
  }

  async decide(request, decision) {
    const card = this.approvals.get(request.approvalId);
    for (const button of card?.querySelectorAll('button') ?? []) button.disabled = true;
    try {
      await this.api.request('PUT', `/hitl/requests/${request.approvalId}/${decision}`);
      this.resolved({ approvalId: request.approvalId, status: decision === 'approve' ? 'approved' : 'rejected' });
    } catch (error) {
      if (error.status === 409) return; // decided elsewhere first: approval_resolved says how
      for (const button of card?.querySelectorAll('button') ?? []) button.disabled = false;
      this.notify(`Could not ${decision}: ${error.message}`, true);
    }
  }

  resolved({ approvalId, status }) {
    const card = this.approvals.get(approvalId);
    if (!card || card.dataset.status !== 'pending') return;
    card.dataset.status = status;
    for (const button of card.querySelectorAll('button')) button.remove();
    card.querySelector('.decision').textContent =
      { approved: 'Approved.', rejected: 'Rejected.', timeout: 'Timed out: not run.' }[status] ?? status;
  }
}

function usageText(usage) {
  if (!usage) return '';
  const tokens = (usage.inputTokens ?? 0) + (usage.outputTokens ?? 0);
  return `${usage.model ?? ''} · ${tokens} tokens · $${Number(usage.costUsd ?? 0).toFixed(4)}`;
}
