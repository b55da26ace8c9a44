// Approvals of dangerous assistant tool calls: the signed-in user's pending
// requests, each told as "<tool> wants to <action>" with its arguments as a readable list. Loaded once from `GET /hitl/requests?status=pending` (and again after every socket
// reconnect, for what happened while away); from then on the tab's own `/canvas` socket pushes
// `approval_requested` the moment a request exists and `approval_resolved` when it is decided here,
// on the device, from curl, or times out. Decided with PUT …/approve|reject (409: already decided).
import { el } from './blocks.js';
import { argumentList, toolAction, toolSentence } from './tool-sentences.js';

const $ = (id) => document.querySelector(`[data-testid="${id}"]`);

export class ApprovalsPanel {
  constructor({ api, socket, notify }) {
    this.api = api;
    this.socket = socket;
    this.notify = notify;
    this.running = false;
    /** Pending requests by id, in arrival order. */
    this.pending = new Map();
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

  render() {
    const requests = [...this.pending.values()];
    $('approvals-empty').hidden = requests.length > 0;
    $('approval-list').replaceChildren(
      ...requests.map((request) =>
        el(
          'li',
          { class: 'approval', dataset: { testid: 'approval', approvalId: request.id } },
          toolSentence(request.toolName, request.parameters),
          argumentList(request.parameters),
          el('p', { class: 'small' }, `${request.reason} · expires ${new Date(request.expiresAt).toLocaleTimeString()}`),
          el(
            'div',
            { class: 'row' },
            el(
              'button',
              { type: 'button', dataset: { testid: 'approve-button' }, onclick: () => this.decide(request, 'approve') },
              'Approve',
            ),
            el(
              'button',
              { type: 'button', class: 'secondary', dataset: { testid: 'reject-button' }, onclick: () => this.decide(request, 'reject') },
              'Reject',
            ),
          ),
        ),
      ),
    );
  }

  async decide(request, decision) {
    try {
      await this.api.request('PUT', `/hitl/requests/${request.id}/${decision}`);
      this.notify(
        `${decision === 'approve' ? 'Approved' : 'Rejected'}: ${request.toolName} wants to ${toolAction(request.toolName, request.parameters)}.`,
      );
    } catch (error) {
      this.notify(
        error.status === 409 ? `${request.toolName} was already decided elsewhere.` : `Could not ${decision}: ${error.message}`,
        true,
      );
    }
    // approval_resolved clears it; this covers a socket that is down.
    if (this.pending.delete(request.id)) this.render();
  }
}
