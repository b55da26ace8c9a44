// Approvals of dangerous assistant tool calls (0021): the signed-in user's pending requests,
// polled from `GET /hitl/requests?status=pending`, decided with PUT …/approve|reject.
import { el } from './blocks.js';

const $ = (id) => document.querySelector(`[data-testid="${id}"]`);
const POLL_MS = 5_000;

export class ApprovalsPanel {
  constructor({ api, notify }) {
    this.api = api;
    this.notify = notify;
    this.timer = 0;
    this.running = false;
  }

  start() {
    if (this.running) return;
    this.running = true;
    $('approvals-panel').hidden = false;
    void this.poll();
  }

  stop() {
    this.running = false;
    clearTimeout(this.timer);
    $('approvals-panel').hidden = true;
    $('approval-list').replaceChildren();
  }

  async poll() {
    clearTimeout(this.timer);
    if (!this.running) return;
    try {
      const { requests } = await this.api.get('/hitl/requests?status=pending');
      this.render(requests);
    } catch (error) {
      if (error.status === 401) return this.stop();
    }
    if (this.running && !document.hidden) this.timer = setTimeout(() => void this.poll(), POLL_MS);
    else if (this.running) document.addEventListener('visibilitychange', () => void this.poll(), { once: true });
  }

  render(requests) {
    $('approvals-empty').hidden = requests.length > 0;
    $('approval-list').replaceChildren(
      ...requests.map((request) =>
        el(
          'li',
          { class: 'approval', dataset: { testid: 'approval', approvalId: request.id } },
          el('strong', {}, request.toolName),
          el('pre', { class: 'params' }, JSON.stringify(request.parameters, null, 2)),
          el('p', { class: 'small' }, `${request.reason} · expires ${new Date(request.expiresAt).toLocaleTimeString()}`),
          el(
            'div',
            { class: 'row' },
            el('button', { type: 'button', dataset: { testid: 'approve-button' }, onclick: () => this.decide(request, 'approve') }, 'Approve'),
            el('button', { type: 'button', class: 'secondary', dataset: { testid: 'reject-button' }, onclick: () => this.decide(request, 'reject') }, 'Reject'),
          ),
        ),
      ),
    );
  }

  async decide(request, decision) {
    try {
      await this.api.request('PUT', `/hitl/requests/${request.id}/${decision}`);
      this.notify(`${request.toolName}: ${decision === 'approve' ? 'approved' : 'rejected'}.`);
    } catch (error) {
      this.notify(`Could not ${decision}: ${error.message}`, true);
    }
    await this.poll();
  }
}
