// The canvas page's assistant panel: the canvas's room threads (`GET/POST /canvases/:id/threads`),
// one followed live from the canvas room (room-thread-feed.js) and drawn with each message's author
// (room-thread-log.js), what the assistant is doing, who is typing, the approvals every member sees
// and the ones this member may decide, the thread's approval policy (editors and owners change it),
// the devices lent to it, and posting (editors and owners; a viewer reads).
import { el } from './blocks.js';
import { ThreadDevices } from './room-thread-devices.js';
import { ThreadFeed } from './room-thread-feed.js';
import { ThreadLog } from './room-thread-log.js';

const TYPING_EVERY_MS = 1_000;
const TYPING_SHOWN_MS = 3_000;
const CHOSEN_KEY = 'switchboard.console.thread:';
const POLICIES = [
  ['requester', 'The member who asked'],
  ['any_editor', 'Any editor'],
  ['canvas_owner', 'The canvas owner'],
  ['quorum', 'A quorum of editors'],
];
const isEditor = (role) => role === 'editor' || role === 'owner';
const onSubmit = (form, action) =>
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void action();
  });

export class RoomThreadPanel {
  constructor({ api, socket, view, notify }) {
    this.api = api;
    this.socket = socket;
    this.view = view;
    this.notify = notify;
    this.canvasId = null;
    this.thread = null;
    this.role = null;
    this.threads = [];
    /** turnId → {state, tool} of turns not idle. */
    this.states = new Map();
    /** userId → {name, timer} of members typing in the followed thread. */
    this.typing = new Map();
    this.lastTypingAt = 0;
    const nameOf = (userId) => view.memberName(userId);
    this.log = new ThreadLog({
      who: () => ({ me: api.user?.id, role: this.role }),
      nameOf,
      decide: (approvalId, decision) => this.decide(approvalId, decision),
    });
    this.devices = new ThreadDevices({ api, nameOf, notify });
    this.feed = new ThreadFeed({
      api,
      view,
      onLoad: (loaded) => this.loaded(loaded),
      onEvent: (payload) => this.onEvent(payload),
      onOther: (payload) => this.onOther(payload),
    });
    this.build();
    view.joinListeners.push((canvasId) => void this.open(canvasId));
    // The room no longer kept what this tab missed: the thread is read again.
    view.resyncListeners.push((canvasId) => canvasId === this.canvasId && this.thread && void this.select(this.thread.id));
    socket.on('thread_typing', (payload) => this.showTyping(payload));
  }

  build() {
    const $ = (testid, tag, props = {}, ...children) => el(tag, { ...props, dataset: { testid, ...props.dataset } }, ...children);
    this.picker = $('thread-select', 'select', { 'aria-label': 'Thread', onchange: (event) => void this.select(event.target.value) });
    this.title = $('thread-new-title', 'input', { name: 'title', maxlength: '200', placeholder: 'Title of a new thread' });
    this.createForm = $(
      'thread-create-form',
      'form',
      { class: 'row' },
      this.title,
      $('thread-create', 'button', { type: 'submit', class: 'secondary' }, 'New thread'),
    );
    onSubmit(this.createForm, () => this.create());
    this.empty = $('thread-empty', 'p', { class: 'small' }, 'No thread here yet.');
    this.policyText = $('thread-policy-text', 'p', { class: 'small' });
    this.policy = $(
      'thread-policy',
      'select',
      { 'aria-label': 'Who decides approvals' },
      POLICIES.map(([value, label]) => el('option', { value }, label)),
    );
    this.quorum = $('thread-quorum', 'input', { type: 'number', min: '1', value: '2', 'aria-label': 'Approvals needed', hidden: true });
    this.policy.addEventListener('change', () => (this.quorum.hidden = this.policy.value !== 'quorum'));
    this.policyForm = $(
      'thread-policy-form',
      'form',
      { class: 'row' },
      this.policy,
      this.quorum,
      $('thread-policy-save', 'button', { type: 'submit', class: 'secondary' }, 'Set'),
    );
    onSubmit(this.policyForm, () => this.setPolicy());
    this.state = $('thread-assistant-state', 'p', { class: 'state', 'aria-live': 'polite', dataset: { state: 'idle' } });
    this.typingLine = $('thread-typing', 'p', { class: 'small', 'aria-live': 'polite' });
    this.input = $('thread-input', 'textarea', { rows: '2', maxlength: '8000', required: true, 'aria-label': 'Message to the assistant' });
    this.input.addEventListener('input', () => this.sendTyping());
    this.input.addEventListener('keydown', (event) => {
      if (event.key !== 'Enter' || event.shiftKey) return;
      event.preventDefault();
      this.form.requestSubmit();
    });
    this.send = $('thread-send', 'button', { type: 'submit' }, 'Send');
    this.form = $('thread-form', 'form', {}, this.input, el('div', { class: 'row' }, this.send, this.devices.choice));
    onSubmit(this.form, () => this.post());
    this.readonly = $(
      'thread-readonly',
      'p',
      { class: 'small', hidden: true },
      'You are a viewer here: you follow the thread, editors and owners talk to the assistant.',
    );
    this.body = $(
      'thread-body',
      'div',
      { hidden: true },
      this.policyText,
      this.policyForm,
      this.devices.node,
      this.log.list,
      this.state,
      this.typingLine,
      this.form,
      this.readonly,
    );
    this.node = $(
      'room-thread-panel',
      'section',
      { class: 'panel room-thread', 'aria-labelledby': 'thread-h' },
      el('h2', { id: 'thread-h' }, 'Assistant in this room'),
      this.picker,
      this.createForm,
      this.empty,
      this.body,
    );
    document.querySelector('[data-testid="canvas-view"] .side').firstElementChild.after(this.node);
  }

  reset() {
    this.feed.stop();
    this.canvasId = null;
    this.thread = null;
    this.threads = [];
    this.picker.replaceChildren();
    this.log.clear();
    this.devices.clear();
    this.clearTyping();
    this.states.clear();
    this.renderState();
    this.body.hidden = true;
    this.empty.hidden = false;
  }

  /** The canvas's room is joined: its threads, and the one last shown here (else the most recent). */
  async open(canvasId) {
    this.reset();
    this.canvasId = canvasId;
    this.feed.watch(canvasId);
    this.role = this.view.role;
    this.createForm.hidden = !isEditor(this.role);
    await this.loadThreads();
    if (this.canvasId !== canvasId || !this.threads.length) return;
    const kept = sessionStorage.getItem(CHOSEN_KEY + canvasId);
    await this.select(this.threads.some((thread) => thread.id === kept) ? kept : this.threads[0].id);
  }

  async loadThreads() {
    const canvasId = this.canvasId;
    try {
      const { threads } = await this.api.get(`/canvases/${canvasId}/threads?limit=50`);
      if (this.canvasId !== canvasId) return;
      this.threads = threads;
      this.picker.replaceChildren(...threads.map((thread) => el('option', { value: thread.id }, thread.title)));
      if (this.thread) this.picker.value = this.thread.id;
      this.picker.hidden = threads.length === 0;
      this.empty.textContent = isEditor(this.role)
        ? 'No thread here yet: start one to talk to the assistant together.'
        : 'No thread here yet.';
      this.empty.hidden = threads.length > 0;
    } catch (error) {
      this.notify(`Could not list the threads: ${error.message}`, true);
    }
  }

  async select(threadId) {
    const canvasId = this.canvasId;
    if (!canvasId || !threadId) return;
    sessionStorage.setItem(CHOSEN_KEY + canvasId, threadId);
    this.picker.value = threadId;
    this.log.clear();
    this.states.clear();
    this.clearTyping();
    this.renderState();
    try {
      await this.feed.follow(canvasId, threadId);
    } catch (error) {
      if (this.canvasId === canvasId) this.notify(`Could not open the thread: ${error.message}`, true);
    }
  }

  async create() {
    const canvasId = this.canvasId;
    try {
      const { thread } = await this.api.post(
        `/canvases/${canvasId}/threads`,
        this.title.value.trim() ? { title: this.title.value.trim() } : {},
      );
      this.title.value = '';
      if (this.canvasId !== canvasId) return;
      await this.loadThreads();
      await this.select(thread.id);
    } catch (error) {
      this.notify(`Could not start a thread: ${error.message}`, true);
    }
  }

  /** The thread was read: its history, the caller's role, policy and devices. */
  loaded({ thread, role, messages }) {
    this.thread = thread;
    this.role = role;
    this.log.history(messages);
    this.body.hidden = false;
    this.empty.hidden = true;
    this.form.hidden = !isEditor(role);
    this.readonly.hidden = isEditor(role);
    this.renderPolicy();
    void this.devices.load(this.base(), isEditor(role));
  }

  base() {
    return `/canvases/${this.canvasId}/threads/${this.thread.id}`;
  }

  onEvent(payload) {
    const { event } = payload;
    this.log.apply(payload);
    if (event.type === 'message') {
      this.stopTyping(event.authorId);
      // Waiting for its turn until the assistant starts it (its own `queued` may not come: the lane was free when it was posted).
      if (!this.states.has(payload.turnId)) this.states.set(payload.turnId, { state: 'queued' });
      this.renderState();
    } else if (event.type === 'assistant_state') {
      if (event.state === 'idle') this.states.delete(payload.turnId);
      else this.states.set(payload.turnId, { state: event.state, tool: event.tool });
      this.renderState();
    } else if (event.type === 'approval_policy') {
      this.thread.approvals = { policy: event.policy, quorum: event.quorum };
      this.renderPolicy();
    } else if (event.type === 'device_lent' || event.type === 'device_withdrawn') {
      void this.devices.load(this.base(), isEditor(this.role));
    }
  }

  /** Another thread of the canvas spoke: a thread started since the list was read joins it (and is shown when none was). */
  async onOther({ threadId }) {
    if (this.threads.some((thread) => thread.id === threadId) || this.listing) return;
    this.listing = this.loadThreads();
    await this.listing;
    this.listing = null;
    if (!this.thread && !this.feed.threadId && this.threads.some((thread) => thread.id === threadId)) await this.select(threadId);
  }

  /** What the assistant does now: the latest turn at work, and how many wait behind it. */
  renderState() {
    const states = [...this.states.entries()];
    const working = states.filter(([, s]) => s.state !== 'queued').at(-1);
    const queued = states.filter(([, s]) => s.state === 'queued').length;
    const forWhom = (turnId) => {
      const name = this.log.authors.get(turnId)?.authorName;
      return name ? ` (for ${name})` : '';
    };
    let text = '';
    if (working) {
      const [turnId, { state, tool }] = working;
      text =
        state === 'running_tool'
          ? `Running ${tool}${forWhom(turnId)}…`
          : state === 'waiting_for_approval'
            ? `Waiting for approval of ${tool}${forWhom(turnId)}…`
            : `Thinking${forWhom(turnId)}…`;
    }
    if (queued) text += `${text ? ' · ' : ''}${queued} message${queued > 1 ? 's' : ''} waiting`;
    this.state.textContent = text;
    this.state.dataset.state = working?.[1].state ?? (queued ? 'queued' : 'idle');
    if (working?.[1].tool) this.state.dataset.tool = working[1].tool;
    else delete this.state.dataset.tool;
  }

  renderPolicy() {
    const { policy, quorum } = this.thread.approvals ?? { policy: 'requester', quorum: null };
    const label = POLICIES.find(([value]) => value === policy)?.[1] ?? policy;
    this.policyText.textContent = `Approvals: ${policy === 'quorum' ? `${quorum} editors approve` : `${label.toLowerCase()} decides`}.`;
    this.policyText.dataset.policy = policy;
    this.policyForm.hidden = !isEditor(this.role);
    this.policy.value = policy;
    this.quorum.hidden = policy !== 'quorum';
    if (quorum) this.quorum.value = String(quorum);
  }

  async setPolicy() {
    const body = { policy: this.policy.value };
    if (body.policy === 'quorum') body.quorum = Number(this.quorum.value);
    try {
      const { thread } = await this.api.request('PUT', `${this.base()}/approvals`, body);
      this.thread.approvals = thread.approvals;
      this.renderPolicy();
    } catch (error) {
      this.notify(`Could not set who decides: ${error.message}`, true);
    }
  }

  async post() {
    const message = this.input.value.trim();
    if (!message || !this.thread) return;
    const body = { message };
    if (this.devices.choice.value) body.deviceId = this.devices.choice.value;
    this.send.disabled = true;
    try {
      await this.api.post(`${this.base()}/messages`, body);
      this.input.value = '';
    } catch (error) {
      const why =
        error.code === 'rate_limited'
          ? 'too many messages: try again in a moment'
          : error.code === 'budget_exceeded'
            ? 'your budget is spent; the others can go on'
            : error.message;
      this.notify(`Not sent: ${why}`, true);
    } finally {
      this.send.disabled = false;
    }
  }

  async decide(approvalId, decision) {
    try {
      await this.api.request('PUT', `/hitl/requests/${approvalId}/${decision}`);
    } catch (error) {
      this.notify(error.status === 409 ? 'That was decided already.' : `Could not ${decision}: ${error.message}`, true);
      throw error;
    }
  }

  /** `thread:typing`, at most once a second, while an editor types in the followed thread. */
  sendTyping() {
    if (!this.thread || !isEditor(this.role) || !this.socket.connected) return;
    const now = Date.now();
    if (now - this.lastTypingAt < TYPING_EVERY_MS) return;
    this.lastTypingAt = now;
    this.socket.volatile.emit('thread:typing', { canvasId: this.canvasId, threadId: this.thread.id });
  }

  showTyping({ canvasId, threadId, userId, name }) {
    if (canvasId !== this.canvasId || threadId !== this.thread?.id || userId === this.api.user?.id) return;
    clearTimeout(this.typing.get(userId)?.timer);
    this.typing.set(userId, { name, timer: setTimeout(() => this.stopTyping(userId), TYPING_SHOWN_MS) });
    this.renderTyping();
  }

  stopTyping(userId) {
    const entry = this.typing.get(userId);
    if (!entry) return;
    clearTimeout(entry.timer);
    this.typing.delete(userId);
    this.renderTyping();
  }

  clearTyping() {
    for (const userId of [...this.typing.keys()]) this.stopTyping(userId);
  }

  renderTyping() {
    const names = [...this.typing.values()].map((entry) => entry.name);
    this.typingLine.textContent = names.length ? `${names.join(', ')} ${names.length > 1 ? 'are' : 'is'} typing…` : '';
  }
}
