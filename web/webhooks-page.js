// The webhooks page (`#/webhooks`): endpoints that receive a signed POST when your runs end or a
// tool call waits for your approval. Create one with its URL and events (and optionally one flow);
// its signing secret is shown once, like an API key's. Each endpoint lists its deliveries (status,
// attempts, the receiver's last status code), sends a test message, and resends a delivery.
import { el } from './blocks.js';
import { confirmingButton, describeError, pageRoot, setState, when } from './page-kit.js';

const EVENTS = [
  ['run.succeeded', 'a run succeeded'],
  ['run.failed', 'a run failed or timed out'],
  ['run.cancelled', 'a run was cancelled'],
  ['approval.requested', 'a tool call waits for my approval'],
  ['input.requested', "a flow's form waits for my answer"],
];

export class WebhooksPage {
  constructor({ api, notify }) {
    this.api = api;
    this.notify = notify;
    /** Per endpoint, the number of the last deliveries load asked for: only its answer is drawn. */
    this.deliveryLoads = new Map();
    ({ root: this.root, $: this.$ } = pageRoot('webhooks-view'));
    this.build();
  }

  build() {
    const event = ([value, text]) =>
      el(
        'label',
        { class: 'check' },
        el('input', {
          type: 'checkbox',
          name: 'events',
          value,
          checked: value !== 'run.cancelled',
          dataset: { testid: `webhook-event-${value}` },
        }),
        ` ${text}`,
      );
    this.root.replaceChildren(
      el('h1', { id: 'webhooks-h' }, 'Webhooks'),
      el(
        'p',
        { class: 'small' },
        'A webhook is a POST to your server when something happens, signed with the endpoint’s secret (Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature). Failed deliveries are retried with backoff.',
      ),
      el(
        'form',
        {
          class: 'card narrow',
          novalidate: true,
          dataset: { testid: 'webhook-form' },
          onsubmit: (e) => (e.preventDefault(), void this.create()),
        },
        el('h2', {}, 'New endpoint'),
        el(
          'label',
          {},
          'URL',
          el('input', { name: 'url', type: 'url', required: true, autocomplete: 'off', dataset: { testid: 'webhook-url' } }),
        ),
        el('fieldset', { class: 'checks' }, el('legend', {}, 'Events'), ...EVENTS.map(event)),
        el(
          'label',
          {},
          'Only this flow (id)',
          el('input', { name: 'flowId', autocomplete: 'off', dataset: { testid: 'webhook-flow' } }),
          el('span', { class: 'small hint' }, 'Empty: every run of yours.'),
        ),
        el('button', { type: 'submit', dataset: { testid: 'webhook-create' } }, 'Create endpoint'),
        el('p', { class: 'state', role: 'status', dataset: { testid: 'webhook-state' } }),
      ),
      el('div', { dataset: { testid: 'webhook-secret-slot' } }),
      el('h2', {}, 'Your endpoints'),
      el('div', { dataset: { testid: 'webhook-list' } }),
      el('p', { class: 'small', hidden: true, dataset: { testid: 'webhook-none' } }, 'No endpoints yet.'),
    );
  }

  async show() {
    await this.load();
  }

  /** Leaving the page forgets a secret still shown. */
  reset() {
    this.$('webhook-secret-slot').replaceChildren();
  }

  async load() {
    try {
      const { webhooks } = await this.api.get('/webhooks');
      this.$('webhook-none').hidden = webhooks.length > 0;
      this.$('webhook-list').replaceChildren(...webhooks.map((webhook) => this.endpoint(webhook)));
      await Promise.all(webhooks.map((webhook) => this.loadDeliveries(webhook)));
    } catch (error) {
      this.notify(`Could not load your webhooks: ${error.message}`, true);
    }
  }

  endpoint(webhook) {
    return el(
      'section',
      { class: 'card', dataset: { testid: 'webhook-endpoint', webhookId: webhook.id }, 'aria-label': webhook.url },
      el('h3', {}, el('code', {}, webhook.url)),
      el(
        'p',
        { class: 'small' },
        `${webhook.events.join(', ')}${webhook.flowId ? ` · flow ${webhook.flowId}` : ' · every run'} · created ${when(webhook.createdAt)}`,
      ),
      el(
        'div',
        { class: 'row' },
        el(
          'button',
          { type: 'button', class: 'secondary', dataset: { testid: 'webhook-test' }, onclick: () => void this.test(webhook) },
          'Send test',
        ),
        el(
          'button',
          { type: 'button', class: 'secondary', dataset: { testid: 'webhook-refresh' }, onclick: () => void this.loadDeliveries(webhook) },
          'Refresh',
        ),
        confirmingButton(
          'Delete',
          'Click again to delete',
          () => this.remove(webhook),
          { dataset: { testid: 'webhook-delete' } },
          { key: `webhook:${webhook.id}` },
        ),
      ),
      el(
        'table',
        { class: 'usage-table' },
        el(
          'thead',
          {},
          el('tr', {}, ...['Event', 'Status', 'Attempts', 'Response', 'Last attempt', ''].map((h) => el('th', { scope: 'col' }, h))),
        ),
        el('tbody', { dataset: { testid: `webhook-deliveries-${webhook.id}` } }),
      ),
    );
  }

  async loadDeliveries(webhook) {
    const body = this.root.querySelector(`[data-testid="webhook-deliveries-${webhook.id}"]`);
    if (!body) return;
    // Loads can overlap (Refresh clicked twice, a resend's reload) and answer out of order: an older
    // answer that lands after a newer one is dropped, so the table never goes back in time.
    const load = (this.deliveryLoads.get(webhook.id) ?? 0) + 1;
    this.deliveryLoads.set(webhook.id, load);
    try {
      const { deliveries } = await this.api.get(`/webhooks/${webhook.id}/deliveries?limit=20`);
      if (this.deliveryLoads.get(webhook.id) !== load) return;
      body.replaceChildren(
        ...deliveries.map((delivery) =>
          el(
            'tr',
            { dataset: { testid: 'webhook-delivery', status: delivery.status } },
            el('td', {}, delivery.eventType),
            el('td', { dataset: { testid: 'webhook-delivery-status' } }, delivery.status),
            el('td', { dataset: { testid: 'webhook-delivery-attempts' } }, String(delivery.attempts)),
            el('td', {}, delivery.responseStatus === null ? (delivery.lastError ?? '—') : String(delivery.responseStatus)),
            el('td', {}, delivery.lastAttemptAt ? when(delivery.lastAttemptAt) : '—'),
            el(
              'td',
              {},
              delivery.status === 'delivered' || delivery.status === 'failed'
                ? el(
                    'button',
                    {
                      type: 'button',
                      class: 'secondary',
                      dataset: { testid: 'webhook-redeliver' },
                      onclick: () => void this.redeliver(webhook, delivery),
                    },
                    'Resend',
                  )
                : '',
            ),
          ),
        ),
      );
    } catch (error) {
      this.notify(`Could not load the deliveries: ${error.message}`, true);
    }
  }

  async create() {
    const form = this.$('webhook-form');
    const state = this.$('webhook-state');
    const url = form.elements.url.value.trim();
    const events = [...form.querySelectorAll('input[name=events]:checked')].map((box) => box.value);
    const flowId = form.elements.flowId.value.trim();
    if (!url) return setState(state, 'Give the URL that receives the webhooks.', 'error');
    if (!events.length) return setState(state, 'Choose at least one event.', 'error');
    setState(state, 'Creating…', 'busy');
    try {
      const { webhook, secret } = await this.api.post('/webhooks', { url, events, ...(flowId ? { flowId } : {}) });
      form.reset();
      setState(state, `Created the endpoint for ${webhook.url}.`);
      this.showSecret(secret);
      await this.load();
    } catch (error) {
      setState(state, describeError(error), 'error');
    }
  }

  /** The secret, once: a read-only field and Done, which removes it from the page for good. */
  showSecret(secret) {
    const slot = this.$('webhook-secret-slot');
    slot.replaceChildren(
      el(
        'section',
        { class: 'card secret', role: 'alert', 'aria-labelledby': 'webhook-secret-h', dataset: { testid: 'webhook-secret-panel' } },
        el('h2', { id: 'webhook-secret-h' }, 'Signing secret'),
        el('p', {}, 'Keep it on your server to check each webhook’s signature. It is shown this once.'),
        el(
          'div',
          { class: 'row' },
          el('input', { readonly: true, value: secret, 'aria-label': 'The signing secret', dataset: { testid: 'webhook-secret' } }),
          el(
            'button',
            { type: 'button', class: 'secondary', dataset: { testid: 'webhook-secret-done' }, onclick: () => slot.replaceChildren() },
            'Done',
          ),
        ),
      ),
    );
  }

  async test(webhook) {
    try {
      await this.api.post(`/webhooks/${webhook.id}/test`, {});
      this.notify('Test message queued.');
      await this.loadDeliveries(webhook);
    } catch (error) {
      this.notify(`Could not send a test: ${error.message}`, true);
    }
  }

  async redeliver(webhook, delivery) {
    try {
      await this.api.post(`/webhooks/${webhook.id}/deliveries/${delivery.id}/redeliver`, {});
      await this.loadDeliveries(webhook);
    } catch (error) {
      this.notify(`Could not resend: ${error.message}`, true);
    }
  }

  async remove(webhook) {
    try {
      await this.api.request('DELETE', `/webhooks/${webhook.id}`);
      this.notify(`Deleted the endpoint for ${webhook.url}.`);
      await this.load();
    } catch (error) {
      this.notify(`Could not delete the endpoint: ${error.message}`, true);
    }
  }
}
