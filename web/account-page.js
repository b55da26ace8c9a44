// The Account page (`#/account`): who you are, your data as one JSON download (`GET
// /me/export`, read with the session's token and handed to the browser as a file), and deleting the
// account (`DELETE /me`), which needs the account's email typed again and signs this tab out.
import { el } from './blocks.js';
import { describeError, pageRoot, setState } from './page-kit.js';

export class AccountPage {
  constructor({ api, notify }) {
    this.api = api;
    this.notify = notify;
    ({ root: this.root, $: this.$ } = pageRoot('account-view'));
    this.build();
  }

  build() {
    this.root.replaceChildren(
      el('h1', { id: 'account-h' }, 'Account'),
      el('dl', { class: 'plan-result', dataset: { testid: 'account-profile' } }),
      el(
        'section',
        { class: 'card narrow', 'aria-labelledby': 'export-h' },
        el('h2', { id: 'export-h' }, 'Export your data'),
        el(
          'p',
          { class: 'small' },
          'One JSON file with everything Switchboard holds about you: canvases you own with their blocks, chats, approvals, flows, agents and their runs, usage and API keys. No password, token or key secret is ever in it. Up to 5 exports an hour.',
        ),
        el('button', { type: 'button', dataset: { testid: 'account-export' }, onclick: () => void this.export() }, 'Download my data'),
        el('p', { class: 'state', role: 'status', dataset: { testid: 'account-export-state' } }),
      ),
      el(
        'form',
        {
          class: 'card narrow danger-zone',
          novalidate: true,
          'aria-labelledby': 'delete-h',
          dataset: { testid: 'account-delete-form' },
          onsubmit: (e) => (e.preventDefault(), void this.remove()),
        },
        el('h2', { id: 'delete-h' }, 'Delete your account'),
        el(
          'p',
          { class: 'small' },
          'This cannot be undone. You are signed out everywhere and your API keys stop working. Each canvas you own goes to its longest-standing editor, or is deleted when it has none. Your chats, flows, agents, connections and keys are deleted.',
        ),
        el(
          'label',
          {},
          'Type your email to confirm',
          el('input', {
            name: 'confirm',
            type: 'email',
            autocomplete: 'off',
            dataset: { testid: 'account-delete-confirm' },
            oninput: () => this.checkConfirm(),
          }),
        ),
        el('button', { type: 'submit', class: 'danger', disabled: true, dataset: { testid: 'account-delete' } }, 'Delete my account'),
        el('p', { class: 'state', role: 'status', dataset: { testid: 'account-delete-state' } }),
      ),
    );
  }

  async show() {
    this.$('account-delete-form').reset();
    this.checkConfirm();
    const term = (label, value) => [el('dt', {}, label), el('dd', {}, value)];
    try {
      const { user } = await this.api.get('/me');
      this.$('account-profile').replaceChildren(
        ...term('Name', user.name),
        ...term('Email', user.email),
        ...term('Tier', user.tier),
        ...(user.admin ? term('Rights', 'admin') : []),
      );
    } catch (error) {
      this.notify(`Could not load your account: ${error.message}`, true);
    }
  }

  checkConfirm() {
    const typed = this.$('account-delete-confirm').value.trim().toLowerCase();
    this.$('account-delete').disabled = !typed || typed !== (this.api.user?.email ?? '').toLowerCase();
  }

  /** Reads the export with the session's token, then lets the browser save it as the file the API named. */
  async export() {
    const state = this.$('account-export-state');
    setState(state, 'Preparing your export…', 'busy');
    try {
      const response = await this.api.authorizedFetch('/me/export');
      const name = /filename="([^"]+)"/.exec(response.headers.get('content-disposition') ?? '')?.[1] ?? 'switchboard-export.json';
      const blob = await response.blob();
      const url = URL.createObjectURL(blob);
      const link = el('a', { href: url, download: name, hidden: true });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      setState(state, `Downloaded ${name} (${Math.ceil(blob.size / 1024)} KB).`);
    } catch (error) {
      setState(state, error.status === 429 ? 'You exported 5 times this hour; try again later.' : describeError(error), 'error');
    }
  }

  async remove() {
    const state = this.$('account-delete-state');
    const confirm = this.$('account-delete-confirm').value.trim();
    setState(state, 'Deleting…', 'busy');
    try {
      const result = await this.api.request('DELETE', '/me', { confirm });
      const kept = result.canvasesTransferred.length;
      // The session is gone on the server: forget it here too (the sign-in page shows the notice).
      this.api.setSession(null);
      this.notify(
        `Your account is deleted.${kept ? ` ${kept} canvas(es) went to their editors.` : ''}${result.canvasesDeleted.length ? ` ${result.canvasesDeleted.length} canvas(es) were deleted.` : ''}`,
      );
    } catch (error) {
      setState(state, describeError(error), 'error');
    }
  }
}
