// The open conversation's task lane on the Assistant page: questions to answer and actions to do
// beside the chat. Collapsing it keeps every answer and mark (a "Tasks (N)" pill reopens it), and
// the whole lane is kept on the server (`PUT /chat/sessions/:id/task-lane`, read back as the
// session's `pendingTaskLane`), so it is the same after navigating away and back.
import { el } from './blocks.js';

/** Typing in an answer is saved once it pauses this long. */
const SAVE_DELAY_MS = 300;

export class TaskLane {
  /** `pill`: the button, placed in the message toolbar, that reopens a collapsed lane. */
  constructor({ api, notify }) {
    this.api = api;
    this.notify = notify;
    this.sessionId = null;
    this.lane = { collapsed: false, items: [] };
    this.timer = null;
    this.saving = Promise.resolve();
    this.root = el(
      'aside',
      { class: 'task-lane', hidden: true, dataset: { testid: 'task-lane' }, 'aria-label': 'Tasks' },
      el(
        'div',
        { class: 'row task-lane-head' },
        el('h2', {}, 'Tasks'),
        el(
          'button',
          {
            type: 'button',
            class: 'secondary',
            title: 'Collapse tasks',
            dataset: { testid: 'task-lane-collapse' },
            onclick: () => this.setCollapsed(true),
          },
          'Collapse ⇥',
        ),
      ),
      el('ul', { class: 'task-items', dataset: { testid: 'task-items' } }),
      el(
        'form',
        { class: 'task-add', dataset: { testid: 'task-add-form' }, onsubmit: (e) => (e.preventDefault(), this.add()) },
        el(
          'select',
          { 'aria-label': 'Kind', dataset: { testid: 'task-add-kind' } },
          el('option', { value: 'question' }, 'Question'),
          el('option', { value: 'action' }, 'Action'),
        ),
        el('input', { maxlength: '1000', autocomplete: 'off', 'aria-label': 'New task', dataset: { testid: 'task-add-text' } }),
        el('button', { type: 'submit', class: 'secondary', dataset: { testid: 'task-add' } }, 'Add'),
      ),
    );
    this.pill = el(
      'button',
      { type: 'button', class: 'secondary task-pill', hidden: true, title: 'Show task panel', dataset: { testid: 'tasks-pill' } },
      '',
    );
    this.pill.addEventListener('click', () => this.setCollapsed(false));
  }

  $(id) {
    return this.root.querySelector(`[data-testid="${id}"]`);
  }

  /** Shows the lane `session` keeps (`pendingTaskLane`), or nothing for a new, unsaved chat. */
  show(session) {
    this.flush();
    this.sessionId = session?.id ?? null;
    const kept = session?.pendingTaskLane;
    this.lane = kept ? { collapsed: kept.collapsed, items: kept.items.map((item) => ({ ...item })) } : { collapsed: false, items: [] };
    this.render();
  }

  render() {
    const open = Boolean(this.sessionId) && !this.lane.collapsed;
    this.root.hidden = !open;
    this.pill.hidden = !this.sessionId || !this.lane.collapsed || this.lane.items.length === 0;
    this.pill.textContent = `Tasks (${this.lane.items.length})`;
    this.$('task-items').replaceChildren(...this.lane.items.map((item) => this.itemNode(item)));
  }

  itemNode(item) {
    if (item.kind === 'action') {
      const box = el('input', { type: 'checkbox', dataset: { testid: 'task-done' } });
      box.checked = Boolean(item.done);
      box.addEventListener('change', () => {
        item.done = box.checked;
        this.save();
      });
      return el('li', { class: 'task action', dataset: { testid: 'task-item', kind: 'action' } }, el('label', {}, box, ' ', item.text));
    }
    const answer = el('textarea', {
      rows: '2',
      maxlength: '4000',
      'aria-label': `Answer: ${item.text}`,
      dataset: { testid: 'task-answer' },
    });
    answer.value = item.answer ?? '';
    answer.addEventListener('input', () => {
      item.answer = answer.value;
      this.save(SAVE_DELAY_MS);
    });
    return el('li', { class: 'task question', dataset: { testid: 'task-item', kind: 'question' } }, el('p', {}, item.text), answer);
  }

  add() {
    const input = this.$('task-add-text');
    const text = input.value.trim();
    if (!text || !this.sessionId || this.lane.items.length >= 50) return;
    this.lane.items.push({ id: crypto.randomUUID(), kind: this.$('task-add-kind').value, text });
    input.value = '';
    this.render();
    this.save();
  }

  /** Collapsing hides the lane and keeps it as it is; the pill brings it back. */
  setCollapsed(collapsed) {
    if (!this.sessionId) return;
    this.lane.collapsed = collapsed;
    this.render();
    this.save();
  }

  /** Keeps the lane on the server, at once or after `delayMs` of quiet. */
  save(delayMs = 0) {
    clearTimeout(this.timer);
    const sessionId = this.sessionId;
    const lane = this.lane;
    const put = () => {
      this.timer = null;
      this.saving = this.saving
        .then(() => this.api.request('PUT', `/chat/sessions/${sessionId}/task-lane`, { lane }))
        .catch((error) => this.notify(`Could not keep the tasks: ${error.message}`, true));
    };
    if (delayMs > 0) this.timer = setTimeout(put, delayMs);
    else put();
  }

  /** A save still waiting on its delay goes out now (before the lane is replaced). */
  flush() {
    if (this.timer === null) return;
    clearTimeout(this.timer);
    this.timer = null;
    const { sessionId, lane } = this;
    // A lane not saved stays on this page; the next change saves it again (the server keeps the last one).
    this.saving = this.saving
      .then(() => this.api.request('PUT', `/chat/sessions/${sessionId}/task-lane`, { lane }))
      .catch((error) => console.warn('task lane not saved; the next change saves it', error));
  }
}
