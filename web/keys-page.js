// The API keys page (`#/keys`): keys for programs (`sb_live_…`). Create one with a name, its
// scopes and an optional expiry; its secret is shown once, with a Copy button, and removed from
// the page when the person says they have it (or leaves the page) — the API never shows it again.
// The list shows every key without its secret; a key is revoked in two clicks.
import { el } from './blocks.js';
import { confirmingButton, describeError, pageRoot, setState, when, withCode } from './page-kit.js';

/** What a key is now. */
function keyState(key) {
  if (key.revokedAt) return 'revoked';
  if (key.expiresAt && new Date(key.expiresAt).getTime() <= Date.now()) return 'expired';
  return 'active';
}

export class KeysPage {
  constructor({ api, notify }) {
    this.api = api;
    this.notify = notify;
    ({ root: this.root, $: this.$ } = pageRoot('keys-view'));
    this.build();
  }

  build() {
    const scope = (value, text) =>
      el(
        'label',
        { class: 'check' },
        el('input', { type: 'checkbox', name: 'scopes', value, checked: true, dataset: { testid: `key-scope-${value}` } }),
        ` ${text}`,
      );
    this.root.replaceChildren(
      el('h1', { id: 'keys-h' }, 'API keys'),
      el(
        'p',
        { class: 'small', dataset: { testid: 'keys-help' } },
        ...withCode(
          'A key lets a program act as you, as `Authorization: Bearer sb_live_…` or `X-API-Key`. It never has admin rights and cannot manage keys.',
        ),
      ),
      el(
        'form',
        {
          class: 'card narrow',
          novalidate: true,
          dataset: { testid: 'key-form' },
          onsubmit: (e) => (e.preventDefault(), void this.create()),
        },
        el('h2', {}, 'New key'),
        el(
          'label',
          {},
          'Name',
          el('input', { name: 'name', required: true, maxlength: '100', autocomplete: 'off', dataset: { testid: 'key-name' } }),
        ),
        el(
          'fieldset',
          { class: 'checks' },
          el('legend', {}, 'Scopes'),
          scope('read', 'read (GET only)'),
          scope('write', 'write (everything you may do)'),
        ),
        el(
          'label',
          {},
          'Expires',
          el('input', { name: 'expires', type: 'date', dataset: { testid: 'key-expires' } }),
          el('span', { class: 'small hint' }, 'Empty: never. The key works until the end of that day (your time).'),
        ),
        el('button', { type: 'submit', dataset: { testid: 'key-create' } }, 'Create key'),
        el('p', { class: 'state', role: 'status', dataset: { testid: 'key-state' } }),
      ),
      el('div', { dataset: { testid: 'key-secret-slot' } }),
      el('h2', {}, 'Your keys'),
      el(
        'table',
        { class: 'usage-table', dataset: { testid: 'key-table' } },
        el(
          'thead',
          {},
          el(
            'tr',
            {},
            ...['Name', 'Key', 'Scopes', 'Created', 'Last used', 'Expires', 'State', ''].map((h) => el('th', { scope: 'col' }, h)),
          ),
        ),
        el('tbody', { dataset: { testid: 'key-rows' } }),
      ),
      el('p', { class: 'small', hidden: true, dataset: { testid: 'key-none' } }, 'No keys yet.'),
    );
  }

  async show() {
    await this.load();
  }

  /** Leaving the page forgets a secret still shown. */
  reset() {
    this.$('key-secret-slot').replaceChildren();
  }

  async load() {
    try {
      const keys = [];
      let cursor;
      do {
        const page = await this.api.get(`/api-keys?limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
        keys.push(...page.apiKeys);
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
      this.render(keys);
    } catch (error) {
      this.notify(`Could not load your keys: ${error.message}`, true);
    }
  }

  render(keys) {
    this.$('key-none').hidden = keys.length > 0;
    this.$('key-rows').replaceChildren(
      ...keys.map((key) => {
        const state = keyState(key);
        return el(
          'tr',
          { dataset: { testid: 'key-row', keyId: key.id, state } },
          el('td', {}, key.name),
          el('td', {}, el('code', {}, `${key.prefix}…`)),
          el('td', {}, key.scopes.join(', ')),
          el('td', {}, when(key.createdAt)),
          el('td', {}, key.lastUsedAt ? when(key.lastUsedAt) : 'never'),
          el('td', {}, key.expiresAt ? when(key.expiresAt) : 'never'),
          el('td', { dataset: { testid: 'key-row-state' } }, state),
          el(
            'td',
            {},
            state === 'revoked'
              ? ''
              : confirmingButton(
                  'Revoke',
                  'Click again to revoke',
                  () => this.revoke(key),
                  { dataset: { testid: 'key-revoke' } },
                  { key: `key:${key.id}` },
                ),
          ),
        );
      }),
    );
  }

  async create() {
    const form = this.$('key-form');
    const state = this.$('key-state');
    const name = form.elements.name.value.trim();
    const scopes = [...form.querySelectorAll('input[name=scopes]:checked')].map((box) => box.value);
    if (!name) return setState(state, 'Give the key a name (what uses it).', 'error');
    if (!scopes.length) return setState(state, 'Choose at least one scope.', 'error');
    const body = { name, scopes };
    if (form.elements.expires.value) body.expiresAt = new Date(`${form.elements.expires.value}T23:59:59.999`).toISOString();
    setState(state, 'Creating…', 'busy');
    try {
      const { apiKey, secret } = await this.api.post('/api-keys', body);
      form.reset();
      setState(state, `Created "${apiKey.name}".`);
      this.showSecret(apiKey, secret);
      await this.load();
    } catch (error) {
      setState(state, describeError(error), 'error');
    }
  }

  /** The secret, once: a read-only field, Copy, and Done, which removes it from the page for good. */
  showSecret(apiKey, secret) {
    const field = el('input', { readonly: true, value: secret, 'aria-label': 'The new key', dataset: { testid: 'key-secret' } });
    const copied = el('span', { class: 'small', 'aria-live': 'polite', dataset: { testid: 'key-copied' } });
    const copy = async () => {
      try {
        await navigator.clipboard.writeText(secret);
      } catch {
        // No clipboard permission: select it so Ctrl+C copies it.
        field.select();
        copied.textContent = 'Selected: press Ctrl+C (⌘C) to copy.';
        return;
      }
      copied.textContent = 'Copied.';
    };
    const slot = this.$('key-secret-slot');
    slot.replaceChildren(
      el(
        'section',
        { class: 'card secret', role: 'alert', 'aria-labelledby': 'secret-h', dataset: { testid: 'key-secret-panel' } },
        el('h2', { id: 'secret-h' }, `Your new key "${apiKey.name}"`),
        el('p', {}, 'Copy it now: it is shown this once and cannot be shown again. If you lose it, revoke it and create another.'),
        el(
          'div',
          { class: 'row' },
          field,
          el('button', { type: 'button', dataset: { testid: 'key-copy' }, onclick: () => void copy() }, 'Copy'),
          el(
            'button',
            { type: 'button', class: 'secondary', dataset: { testid: 'key-done' }, onclick: () => slot.replaceChildren() },
            'Done',
          ),
        ),
        copied,
      ),
    );
    field.select();
  }

  async revoke(key) {
    try {
      await this.api.request('DELETE', `/api-keys/${key.id}`);
      this.notify(`Revoked "${key.name}": programs using it are refused from now on.`);
      await this.load();
    } catch (error) {
      this.notify(`Could not revoke the key: ${error.message}`, true);
    }
  }
}
