// The home page: the canvases I am a member of with my role on each; create, rename (editors),
// delete with a confirmation and share (owners), leave (others). One request per action; the list
// is read again afterwards, so it always shows what the server holds.
import { el } from './blocks.js';
import { ask } from './confirm-dialog.js';
import { MembersPanel } from './members-panel.js';

const $ = (id) => document.querySelector(`[data-testid="${id}"]`);
const ROLE_TEXT = { owner: 'owner', editor: 'editor', viewer: 'viewer (read only)' };

export class CanvasesPage {
  constructor({ api, notify }) {
    this.api = api;
    this.notify = notify;
    $('create-canvas-form').addEventListener('submit', (event) => void this.create(event));
  }

  async show() {
    try {
      // Newest first, in pages of up to 200: follow nextCursor to list them all.
      const canvases = [];
      let cursor;
      do {
        const page = await this.api.get(`/canvases?limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
        canvases.push(...page.canvases);
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
      $('canvas-list').replaceChildren(...canvases.map((canvas) => this.item(canvas)));
      if (canvases.length === 0) $('canvas-list').append(el('li', { class: 'small' }, 'No canvases yet.'));
    } catch (error) {
      this.notify(`Could not load canvases: ${error.message}`, true);
    }
  }

  async create(event) {
    event.preventDefault();
    const form = event.currentTarget;
    try {
      const { canvas } = await this.api.post('/canvases', { title: String(new FormData(form).get('title')).trim() });
      form.reset();
      location.hash = `#/canvases/${canvas.id}`;
    } catch (error) {
      this.notify(`Could not create the canvas: ${error.message}`, true);
    }
  }

  item(canvas) {
    const button = (testid, label, onclick, extra = {}) =>
      el('button', { type: 'button', class: 'secondary', dataset: { testid }, onclick, ...extra }, label);
    const title = el('a', { href: `#/canvases/${canvas.id}`, class: 'title', dataset: { testid: 'open-canvas' } }, canvas.title);
    const writer = canvas.role === 'owner' || canvas.role === 'editor';
    const actions = el(
      'div',
      { class: 'item-actions' },
      writer ? button('canvas-rename', 'Rename', () => this.rename(node, canvas), { 'aria-label': `Rename ${canvas.title}` }) : null,
      button('canvas-share', canvas.role === 'owner' ? 'Share' : 'Members', () => this.toggleShare(node, canvas), {
        'aria-expanded': 'false',
        'aria-label': `${canvas.role === 'owner' ? 'Share' : 'Members of'} ${canvas.title}`,
      }),
      canvas.role === 'owner'
        ? button('canvas-delete', 'Delete', () => void this.remove(canvas), { class: 'danger', 'aria-label': `Delete ${canvas.title}` })
        : button('canvas-leave', 'Leave', () => void this.leave(canvas), { 'aria-label': `Leave ${canvas.title}` }),
    );
    const node = el(
      'li',
      { dataset: { testid: 'canvas-list-item', canvasId: canvas.id, role: canvas.role } },
      el(
        'div',
        { class: 'item-head' },
        title,
        el('span', { class: 'badge', dataset: { testid: 'canvas-item-role' }, title: 'Your role' }, ROLE_TEXT[canvas.role] ?? canvas.role),
      ),
      actions,
    );
    return node;
  }

  /** Swaps the title for a small form; Enter saves, Escape cancels. */
  rename(node, canvas) {
    if (node.querySelector('[data-testid="rename-form"]')) return;
    const input = el('input', { value: canvas.title, required: true, maxlength: 200, dataset: { testid: 'rename-input' } });
    const form = el(
      'form',
      { class: 'inline rename', dataset: { testid: 'rename-form' } },
      el('label', {}, 'New title', input),
      el('button', { type: 'submit', dataset: { testid: 'rename-save' } }, 'Save'),
      el('button', { type: 'button', class: 'secondary', dataset: { testid: 'rename-cancel' }, onclick: () => form.remove() }, 'Cancel'),
    );
    form.addEventListener('keydown', (event) => event.key === 'Escape' && form.remove());
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const title = input.value.trim();
      if (!title) return;
      try {
        await this.api.request('PATCH', `/canvases/${canvas.id}`, { title });
        await this.show();
        this.notify(`Renamed to “${title}”.`);
      } catch (error) {
        this.notify(`Could not rename: ${error.message}`, true);
      }
    });
    node.querySelector('.item-head').after(form);
    input.select();
  }

  toggleShare(node, canvas) {
    const toggle = node.querySelector('[data-testid="canvas-share"]');
    const open = node.querySelector('[data-testid="share-panel"]');
    if (open) {
      open.remove();
      toggle.setAttribute('aria-expanded', 'false');
      return;
    }
    const panel = new MembersPanel({ api: this.api, canvas, notify: this.notify });
    node.append(panel.node);
    toggle.setAttribute('aria-expanded', 'true');
    panel.load().catch((error) => this.notify(`Could not load the members: ${error.message}`, true));
  }

  async remove(canvas) {
    const answer = await ask({
      title: `Delete “${canvas.title}”?`,
      message: 'The canvas, all its blocks and its history go for everyone who shares it. This cannot be undone.',
      actions: [{ value: 'delete', label: 'Delete canvas', danger: true }],
      testid: 'delete-canvas-dialog',
    });
    if (answer !== 'delete') return;
    try {
      await this.api.request('DELETE', `/canvases/${canvas.id}`);
      this.notify(`Deleted “${canvas.title}”.`);
    } catch (error) {
      this.notify(`Could not delete the canvas: ${error.message}`, true);
    }
    await this.show();
  }

  async leave(canvas) {
    const answer = await ask({
      title: `Leave “${canvas.title}”?`,
      message: 'You will no longer see this canvas; its owner can share it with you again.',
      actions: [{ value: 'leave', label: 'Leave canvas', danger: true }],
      testid: 'leave-canvas-dialog',
    });
    if (answer !== 'leave') return;
    try {
      await this.api.request('DELETE', `/canvases/${canvas.id}/members/${this.api.user.id}`);
      this.notify(`You left “${canvas.title}”.`);
    } catch (error) {
      this.notify(`Could not leave the canvas: ${error.message}`, true);
    }
    await this.show();
  }
}
