// Sharing a canvas: its members with their roles; an owner adds people by email with a role,
// changes a role and removes a member (`POST` / `DELETE /canvases/:id/members…`). Used by the
// canvas list's Share panel.
import { el } from './blocks.js';
import { ask } from './confirm-dialog.js';

const ROLES = ['viewer', 'editor', 'owner'];

export class MembersPanel {
  /**
   * @param {object} deps
   * @param {import('./api.js').Api} deps.api
   * @param {{id: string, title: string, role: string, ownerId: string}} deps.canvas
   * @param {(message: string, isError?: boolean) => void} deps.notify
   */
  constructor({ api, canvas, notify }) {
    this.api = api;
    this.canvas = canvas;
    this.notify = notify;
    this.list = el('ul', { class: 'members', dataset: { testid: 'share-members' } });
    this.result = el('p', { class: 'small', 'aria-live': 'polite', dataset: { testid: 'share-result' } });
    const email = el('input', { name: 'email', type: 'email', required: true, autocomplete: 'off', dataset: { testid: 'share-email' } });
    const role = el(
      'select',
      { name: 'role', dataset: { testid: 'share-role' } },
      ['editor', 'viewer'].map((name) => el('option', { value: name }, name)),
    );
    this.form = el(
      'form',
      { class: 'share-form', dataset: { testid: 'share-form' } },
      el('label', {}, 'Email', email),
      el('label', {}, 'Role', role),
      el('button', { type: 'submit', dataset: { testid: 'share-submit' } }, 'Share'),
    );
    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      void this.share(email.value.trim(), role.value);
    });
    this.node = el(
      'section',
      { class: 'share-panel', dataset: { testid: 'share-panel' }, 'aria-label': `Members of ${canvas.title}` },
      el('h2', {}, 'Members'),
      this.list,
      canvas.role === 'owner' ? this.form : el('p', { class: 'small' }, 'Only an owner can share this canvas.'),
      this.result,
    );
  }

  async load() {
    const members = [];
    let cursor;
    do {
      const page = await this.api.get(`/canvases/${this.canvas.id}/members${cursor ? `?cursor=${encodeURIComponent(cursor)}` : ''}`);
      members.push(...page.members);
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    this.render(members);
  }

  render(members) {
    const owner = this.canvas.role === 'owner';
    const me = this.api.user?.id;
    this.list.replaceChildren(
      ...members.map((member) => {
        const fixed = !owner || member.userId === this.canvas.ownerId || member.userId === me;
        const label = `${member.name}${member.userId === me ? ' (you)' : ''}`;
        const role = fixed
          ? el('span', { class: 'badge', dataset: { testid: 'share-member-role' } }, member.role)
          : el(
              'select',
              {
                'aria-label': `Role of ${member.name}`,
                dataset: { testid: 'share-member-role' },
                onchange: (event) => void this.share(member.email, event.currentTarget.value),
              },
              ROLES.map((name) => el('option', { value: name, selected: name === member.role }, name)),
            );
        const remove = fixed
          ? null
          : el(
              'button',
              {
                type: 'button',
                class: 'secondary',
                'aria-label': `Remove ${member.name}`,
                dataset: { testid: 'share-member-remove' },
                onclick: () => void this.remove(member),
              },
              'Remove',
            );
        return el(
          'li',
          { dataset: { testid: 'share-member', userId: member.userId, email: member.email } },
          el('span', { class: 'who' }, label, el('span', { class: 'small' }, ` ${member.email}`)),
          role,
          remove,
        );
      }),
    );
  }

  async share(email, role) {
    if (!email) return;
    try {
      const { member } = await this.api.post(`/canvases/${this.canvas.id}/members`, { email, role });
      this.result.textContent = `${member.name} is now ${/^[aeiou]/.test(member.role) ? 'an' : 'a'} ${member.role}.`;
      this.form.reset();
      await this.load();
    } catch (error) {
      this.result.textContent =
        error.code === 'user_not_found' ? `No account uses ${email}: they must sign up first.` : `Could not share: ${error.message}`;
    }
  }

  async remove(member) {
    const answer = await ask({
      title: `Remove ${member.name}?`,
      message: `${member.name} (${member.email}) will no longer see “${this.canvas.title}”. You can share it with them again later.`,
      actions: [{ value: 'remove', label: 'Remove', danger: true }],
      testid: 'remove-member-dialog',
    });
    if (answer !== 'remove') return;
    try {
      await this.api.request('DELETE', `/canvases/${this.canvas.id}/members/${member.userId}`);
      this.result.textContent = `${member.name} was removed.`;
    } catch (error) {
      this.result.textContent = `Could not remove ${member.name}: ${error.message}`;
    }
    await this.load().catch((error) => this.notify(`Could not load the members: ${error.message}`, true));
  }
}
