// A chatflow's Chat section on the Flows page: one conversation with the flow, streamed
// (`POST /flows/:id/chat/stream`: `text_chunk`, then `final` with its usage, or `error`), kept in
// one session until "New chat".
import { el } from './blocks.js';

const tokens = (usage) =>
  usage
    ? `${usage.inputTokens ?? 0} in / ${usage.outputTokens ?? 0} out${usage.costUsd ? ` · $${Number(usage.costUsd).toFixed(6)}` : ''}`
    : '';

export class FlowChat {
  constructor({ api }) {
    this.api = api;
    this.flow = null;
    this.sessionId = null;
    this.running = null;
    this.root = this.build();
  }

  $(id) {
    return this.root.querySelector(`[data-testid="${id}"]`);
  }

  build() {
    return el(
      'section',
      { class: 'card', hidden: true, dataset: { testid: 'flow-chat' }, 'aria-labelledby': 'flow-chat-h' },
      el('h2', { id: 'flow-chat-h' }, 'Chat'),
      el('ol', { class: 'flow-messages', 'aria-live': 'polite', dataset: { testid: 'flow-messages' } }),
      el(
        'form',
        { class: 'inline', dataset: { testid: 'flow-chat-form' }, onsubmit: (event) => (event.preventDefault(), void this.chat()) },
        el(
          'label',
          {},
          'Message ',
          el('input', { name: 'message', required: true, maxlength: '8000', autocomplete: 'off', dataset: { testid: 'flow-chat-input' } }),
        ),
        el('button', { type: 'submit', dataset: { testid: 'flow-chat-send' } }, 'Send'),
        el(
          'button',
          { type: 'button', class: 'secondary', dataset: { testid: 'flow-chat-new' }, onclick: () => this.newChat() },
          'New chat',
        ),
      ),
    );
  }

  /** Shown for a chatflow, with a fresh conversation. */
  show(flow) {
    this.stop();
    this.flow = flow;
    this.sessionId = null;
    this.root.hidden = flow?.type !== 'chatflow';
    this.$('flow-messages').replaceChildren();
  }

  stop() {
    this.running?.abort();
    this.running = null;
  }

  newChat() {
    this.sessionId = null;
    this.$('flow-messages').replaceChildren();
  }

  message(role, text) {
    const item = el(
      'li',
      { class: `msg msg-${role}`, dataset: { testid: `flow-message-${role}` } },
      el('span', { class: 'tag' }, role),
      el('span', { class: 'text' }, text),
    );
    this.$('flow-messages').append(item);
    return item.querySelector('.text');
  }

  async chat() {
    const input = this.$('flow-chat-input');
    const message = input.value.trim();
    if (!message || !this.flow) return;
    input.value = '';
    this.message('user', message);
    const answer = this.message('assistant', '');
    answer.parentElement.classList.add('streaming');
    const send = this.$('flow-chat-send');
    send.disabled = true;
    this.running?.abort();
    const controller = (this.running = new AbortController());
    try {
      await this.api.stream(
        `/flows/${this.flow.id}/chat/stream`,
        { message, ...(this.sessionId ? { sessionId: this.sessionId } : {}) },
        ({ event, data }) => {
          if (data?.sessionId) this.sessionId = data.sessionId;
          if (event === 'text_chunk') answer.textContent += data.text;
          else if (event === 'final') {
            answer.textContent = data.response;
            answer.parentElement.append(el('span', { class: 'small usage' }, tokens(data.usage)));
          } else if (event === 'error') answer.parentElement.append(el('span', { class: 'error' }, ` ${data.message ?? data.code}`));
        },
        controller.signal,
      );
    } catch (error) {
      if (error.name !== 'AbortError') answer.parentElement.append(el('span', { class: 'error' }, ` ${error.message}`));
    } finally {
      answer.parentElement.classList.remove('streaming');
      send.disabled = false;
      if (this.running === controller) this.running = null;
    }
  }
}
