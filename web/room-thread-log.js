// The messages of a room thread as the canvas page shows them: each member's message under their
// name, the assistant's answer to it (streaming in, then whole), the tools it runs, and each
// approval it asks for with who decides it, the votes of a quorum and how it was decided.
// Built with DOM calls only: every text here is a member's or the model's.
import { el } from './blocks.js';
import { argumentList, toolSentence } from './tool-sentences.js';

const STATUS_TEXT = { approved: 'Approved', rejected: 'Rejected', timeout: 'Timed out: not run' };

export class ThreadLog {
  /**
   * @param {object} deps
   * @param {() => {me: string, role: string}} deps.who the signed-in member and their role on the canvas
   * @param {(userId: string) => string | null} deps.nameOf a member's name
   * @param {(approvalId: string, decision: 'approve' | 'reject') => Promise<void>} deps.decide
   */
  constructor({ who, nameOf, decide }) {
    this.who = who;
    this.nameOf = nameOf;
    this.decide = decide;
    this.list = el('ol', { class: 'chat-log thread-log', 'aria-live': 'polite', dataset: { testid: 'thread-log' } });
    /** Elements by `message:<turnId>`, `answer:<turnId>`, `approval:<approvalId>`. */
    this.nodes = new Map();
    /** turnId → {authorId, authorName} */
    this.authors = new Map();
    /** approvalId → the request as asked, its votes, and whether it is decided. */
    this.approvals = new Map();
  }

  clear() {
    this.nodes.clear();
    this.authors.clear();
    this.approvals.clear();
    this.list.replaceChildren();
  }

  /** The stored messages: members' messages with their author, the assistant's answers (tools left out). */
  history(messages) {
    this.clear();
    for (const message of messages) {
      if (message.role === 'user') this.message(message.id, message);
      else if (message.role === 'assistant' && message.replyTo) {
        const answer = this.answer(message.replyTo);
        answer.querySelector('.text').textContent = message.content;
        answer.dataset.status = message.status === 'cancelled' ? 'cancelled' : 'done';
      }
    }
  }

  /** One `thread_event` of the thread, in seq order. */
  apply({ turnId, event }) {
    switch (event.type) {
      case 'message':
        return void this.message(turnId, event);
      case 'text_chunk': {
        const answer = this.answer(turnId);
        if (answer.dataset.status === 'streaming') answer.querySelector('.text').textContent += event.text;
        return;
      }
      case 'tool_call':
        return this.toolLine(turnId, event.callId, `${event.name}…`);
      case 'tool_result':
        return this.toolLine(turnId, event.callId, `${event.name}: ${event.ok === false ? 'failed' : 'done'}`);
      case 'approval_requested':
        return this.approvalCard(turnId, event);
      case 'approval_vote':
        return this.vote(event);
      case 'approval_resolved':
        return this.resolved(event);
      case 'final':
      case 'cancelled':
      case 'error':
        return this.end(turnId, event);
      default:
        return undefined;
    }
  }

  message(turnId, { authorId, authorName, content }) {
    const key = `message:${turnId}`;
    if (this.nodes.has(key)) return this.nodes.get(key);
    this.authors.set(turnId, { authorId, authorName });
    const mine = authorId === this.who().me;
    return this.add(
      key,
      el(
        'li',
        { class: `chat-message user${mine ? ' mine' : ''}`, dataset: { testid: 'thread-message', turnId, authorId: authorId ?? '' } },
        el(
          'span',
          { class: 'who', dataset: { testid: 'thread-author' } },
          mine ? `${authorName ?? 'You'} (you)` : (authorName ?? 'A member'),
        ),
        el('div', { class: 'text' }, content),
      ),
    );
  }

  /** The answer to turn `turnId`, created streaming at its first event. */
  answer(turnId) {
    const key = `answer:${turnId}`;
    if (this.nodes.has(key)) return this.nodes.get(key);
    const to = this.authors.get(turnId)?.authorName;
    return this.add(
      key,
      el(
        'li',
        { class: 'chat-message assistant', dataset: { testid: 'thread-answer', turnId, status: 'streaming' } },
        el('span', { class: 'who' }, to ? `Assistant · to ${to}` : 'Assistant'),
        el('ul', { class: 'thread-tools small' }),
        el('div', { class: 'text', dataset: { testid: 'thread-answer-text' } }),
      ),
    );
  }

  toolLine(turnId, callId, text) {
    const answer = this.answer(turnId);
    if (answer.dataset.status !== 'streaming') return;
    const tools = answer.querySelector('.thread-tools');
    const line = [...tools.children].find((item) => item.dataset.callId === callId);
    if (line) line.textContent = text;
    else tools.append(el('li', { dataset: { callId: callId ?? '', testid: 'thread-tool' } }, text));
  }

  end(turnId, event) {
    const answer = this.answer(turnId);
    if (answer.dataset.status !== 'streaming') return;
    const text = answer.querySelector('.text');
    if (event.type === 'final') text.textContent = event.response;
    else if (event.type === 'cancelled') text.textContent = event.response || text.textContent;
    else answer.append(el('p', { class: 'small' }, `Failed: ${event.message}`));
    answer.dataset.status = event.type === 'final' ? 'done' : event.type;
  }

  /** Who decides a request, as its card says it. */
  decidersText(request) {
    const { deciders = { policy: 'requester' } } = request;
    const author = this.authors.get(request.turnId);
    const { me } = this.who();
    switch (deciders.policy) {
      case 'any_editor':
        return 'Any editor or owner decides.';
      case 'canvas_owner':
        return 'The canvas owner decides.';
      case 'quorum':
        return `${request.approvals} of ${request.needed} approvals from editors; one reject rejects.`;
      case 'addressed':
        return deciders.addressedTo === me
          ? 'You decide: it runs on your device.'
          : `${this.nameOf(deciders.addressedTo) ?? 'The device’s owner'} decides: it runs on their device.`;
      default:
        return author?.authorId === me ? 'You decide: you asked.' : `${author?.authorName ?? 'The member who asked'} decides.`;
    }
  }

  /** Whether the signed-in member may decide (or vote on) the request; the server checks it again. */
  mayDecide(request) {
    const { me, role } = this.who();
    const editor = role === 'editor' || role === 'owner';
    switch (request.deciders?.policy) {
      case 'any_editor':
        return editor;
      case 'canvas_owner':
        return role === 'owner';
      case 'quorum':
        return editor && !request.voters.has(me);
      case 'addressed':
        return request.deciders.addressedTo === me;
      default:
        return this.authors.get(request.turnId)?.authorId === me;
    }
  }

  approvalCard(turnId, event) {
    const key = `approval:${event.approvalId}`;
    if (this.nodes.has(key)) return;
    const request = {
      ...event,
      turnId,
      approvals: 0,
      needed: event.deciders?.quorum ?? 1,
      voters: new Set(),
      status: 'pending',
    };
    this.approvals.set(event.approvalId, request);
    const card = el(
      'li',
      { class: 'chat-approval', dataset: { testid: 'thread-approval', approvalId: event.approvalId, turnId, status: 'pending' } },
      toolSentence(event.toolName, event.parameters),
      argumentList(event.parameters, 'thread-approval-arguments'),
      el('p', { class: 'small', dataset: { testid: 'thread-approval-deciders' } }),
      el('div', { class: 'row' }),
      el('p', { class: 'decision', dataset: { testid: 'thread-approval-status' } }),
    );
    this.add(key, card);
    this.renderApproval(request);
  }

  vote({ approvalId, userId, approvals, needed }) {
    const request = this.approvals.get(approvalId);
    if (!request) return;
    Object.assign(request, { approvals, needed });
    request.voters.add(userId);
    this.renderApproval(request);
  }

  resolved({ approvalId, status, decidedBy, voters }) {
    const request = this.approvals.get(approvalId);
    if (!request || request.status !== 'pending') return;
    Object.assign(request, { status, decidedBy, finalVoters: voters });
    this.renderApproval(request);
  }

  renderApproval(request) {
    const card = this.nodes.get(`approval:${request.approvalId}`);
    card.dataset.status = request.status;
    card.dataset.approvals = String(request.approvals);
    const [deciders, buttons, decision] = [...card.children].slice(-3);
    deciders.textContent = `${request.reason ? `${request.reason} · ` : ''}${this.decidersText(request)}`;
    const pending = request.status === 'pending';
    buttons.replaceChildren(
      ...(pending && this.mayDecide(request)
        ? [
            el(
              'button',
              { type: 'button', dataset: { testid: 'thread-approve' }, onclick: () => this.decideOn(request, 'approve') },
              'Approve',
            ),
            el(
              'button',
              { type: 'button', class: 'secondary', dataset: { testid: 'thread-reject' }, onclick: () => this.decideOn(request, 'reject') },
              'Reject',
            ),
          ]
        : []),
    );
    if (pending) {
      decision.textContent = request.voters.size
        ? `Votes so far: ${[...request.voters].map((id) => this.nameOf(id) ?? 'a member').join(', ')}`
        : '';
      return;
    }
    const by = request.decidedBy
      ? ` by ${request.decidedBy === this.who().me ? 'you' : (this.nameOf(request.decidedBy) ?? 'a member')}`
      : '';
    decision.textContent = `${STATUS_TEXT[request.status] ?? request.status}${request.status === 'timeout' ? '' : by}.`;
  }

  async decideOn(request, decision) {
    const card = this.nodes.get(`approval:${request.approvalId}`);
    for (const button of card.querySelectorAll('button')) button.disabled = true;
    try {
      await this.decide(request.approvalId, decision);
      // A quorum vote that did not decide it yet: this member has voted (the room's vote event says so too).
      if (request.deciders?.policy === 'quorum') request.voters.add(this.who().me);
    } catch {
      // Said by `decide`; the buttons come back unless the request was decided meanwhile.
    }
    this.renderApproval(request);
  }

  add(key, node) {
    this.nodes.set(key, node);
    this.list.append(node);
    node.scrollIntoView?.({ block: 'nearest' });
    return node;
  }
}
