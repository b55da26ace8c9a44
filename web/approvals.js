// Approvals of dangerous assistant tool calls: the signed-in user's pending
// requests, each told as "<tool> wants to <action>" with its arguments as a readable list. Loaded once from `GET /hitl/requests?status=pending` (and again after every socket
// reconnect, for what happened while away); from then on the tab's own `/canvas` socket pushes
// `approval_requested` the moment a request exists and `approval_resolved` when it is decided here,
// on the device, from curl, or times out. Decided with PUT …/approve|reject (409: already decided).
// "Edit arguments" approves with the person's own arguments (JSON, checked against the tool's schema
// by the API: a 400 shows its problems); "Reply" rejects with a message the model reads instead.
import { el } from './blocks.js';
import { argumentList, toolAction, toolSentence } from './tool-sentences.js';

const $ = (id) => document.querySelector(`[data-testid="${id}"]`);

export class ApprovalsPanel {
  constructor({ api, socket, notify }) {
    this.api = api;
    this.socket = socket;
    this.notify = notify;
    this.running = false;
    /** Pending requests by id, in arrival order, and their elements once drawn. */
    this.pending = new Map();
    this.drawn = new Map();
    socket.on('connect', () => void this.load());
    socket.on('approval_requested', (request) => {
      if (!this.running) return;
      this.pending.set(request.approvalId, { id: request.approvalId, ...request });
      this.render();
    });
    socket.on('approval_resolved', ({ approvalId }) => {
      if (this.pending.delete(approvalId)) this.render();
    });
  }

  start() {
    if (this.running) return;
    this.running = true;
    $('approvals-panel').hidden = false;
    void this.load();
  }

  stop() {
    this.running = false;
    this.pending.clear();
    this.drawn.clear();
    $('approvals-panel').hidden = true;
    $('approval-list').replaceChildren();
  }

  /** The pending list from the API: the truth after (re)connecting. */
  async load() {
    if (!this.running) return;
    const known = new Set(this.pending.keys());
    try {
      const { requests } = await this.api.get('/hitl/requests?status=pending');
      // Requests known before the load and missing from it were decided meanwhile; ones pushed
      // while it loaded stay.
      const listed = new Set(requests.map((request) => request.id));
      for (const id of known) if (!listed.has(id)) this.pending.delete(id);
      for (const request of requests) if (!this.pending.has(request.id)) this.pending.set(request.id, request);
      this.render();
    } catch (error) {
      if (error.status === 401) this.stop();
    }
  }

  /** Draws the list; a request already drawn keeps its element, so edited arguments or a reply stay. */
  render() {
    const requests = [...this.pending.values()];
    for (const id of this.drawn.keys()) if (!this.pending.has(id)) this.drawn.delete(id);
    $('approvals-empty').hidden = requests.length > 0;
    $('approval-list').replaceChildren(
      ...requests.map((request) => {
        if (!this.drawn.has(request.id)) this.drawn.set(request.id, this.item(request));
        return this.drawn.get(request.id);
      }),
    );
  }

  item(request) {
    return el(
      'li',
      { class: 'approval', dataset: { testid: 'approval', approvalId: request.id } },
      toolSentence(request.toolName, request.parameters),
      argumentList(request.parameters),
      el('p', { class: 'small' }, `${request.reason} · expires ${new Date(request.expiresAt).toLocaleTimeString()}`),
      el(
        'div',
        { class: 'row' },
        el('button', { type: 'button', dataset: { testid: 'approve-button' }, onclick: () => this.decide(request, 'approve') }, 'Approve'),
        el(
          'button',
          { type: 'button', class: 'secondary', dataset: { testid: 'reject-button' }, onclick: () => this.decide(request, 'reject') },
          'Reject',
        ),
      ),
      this.answers(request),
    );
  }

  /** Approve with edited arguments, or reject with a reply: folded away until wanted. */
  answers(request) {
    const problems = el('p', { class: 'small', role: 'alert', dataset: { testid: 'approval-problems' } });
    const args = el(
      'textarea',
      { rows: 4, class: 'params', 'aria-label': 'Arguments (JSON)', dataset: { testid: 'edit-arguments' } },
      JSON.stringify(request.parameters ?? {}, null, 2),
    );
    const reply = el('input', { type: 'text', maxLength: 2000, 'aria-label': 'Reply to the model', dataset: { testid: 'reply-text' } });
    return el(
      'details',
      { class: 'small' },
      el('summary', {}, 'Edit arguments or reply'),
      args,
      el(
        'div',
        { class: 'row' },
        el(
          'button',
          {
            type: 'button',
            dataset: { testid: 'approve-edited-button' },
            onclick: () => {
              let edited;
              try {
                edited = JSON.parse(args.value);
              } catch {
                problems.textContent = 'The arguments are not valid JSON.';
                return;
              }
              void this.decide(request, 'approve', { arguments: edited }, problems);
            },
          },
          'Approve with these arguments',
        ),
      ),
      reply,
      el(
        'div',
        { class: 'row' },
        el(
          'button',
          {
            type: 'button',
            class: 'secondary',
            dataset: { testid: 'reply-button' },
            onclick: () => void this.decide(request, 'reject', { message: reply.value }, problems),
          },
          'Reject with this reply',
        ),
      ),
      problems,
    );
  }

  async decide(request, decision, body, problems) {
    try {
      await this.api.request('PUT', `/hitl/requests/${request.id}/${decision}`, body);
      this.notify(
        `${decision === 'approve' ? 'Approved' : 'Rejected'}: ${request.toolName} wants to ${toolAction(request.toolName, request.parameters)}.`,
      );
    } catch (error) {
      if (error.status === 400 && problems) {
        const details = Array.isArray(error.details) ? error.details : [];
        problems.textContent = details.length ? details.map((d) => `${d.path}: ${d.message}`).join('; ') : error.message;
        return;
      }
      this.notify(
        error.status === 409 ? `${request.toolName} was already decided elsewhere.` : `Could not ${decision}: ${error.message}`,
        true,
      );
    }
    // approval_resolved clears it; this covers a socket that is down.
    if (this.pending.delete(request.id)) this.render();
  }
}
