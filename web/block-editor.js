// Writing on the board by hand: add, edit, delete and drag-reorder blocks. Every change is one
// REST call; the server computes ranks (LexoRank) from the neighbours named in
// `afterId`/`beforeId`, and sends the change to the room, so collaborators see it live through
// the same room events as everything else (canvas-view.js applies them).
//
// Block controls carry no text of their own (their labels are CSS `content`, their names
// `aria-label`), so a block's text is its content only.
import { el } from './blocks.js';

const $ = (id) => document.querySelector(`[data-testid="${id}"]`);

export const BLOCK_TYPES = ['text', 'heading', 'todo', 'bullet_list', 'quote', 'code', 'image', 'divider'];
const TYPE_LABEL = {
  text: 'Paragraph',
  heading: 'Heading',
  todo: 'Todo',
  bullet_list: 'List',
  quote: 'Quote',
  code: 'Code',
  image: 'Image',
  divider: 'Divider',
};

/**
 * Form fields for one block type's content, filled from `content`. `read()` returns the content
 * to send (or throws a message for the user).
 */
export function contentFields(type, content = {}) {
  const area = (name, label, value, rows = 3) =>
    el('label', {}, label, el('textarea', { name, rows, maxlength: 20000, dataset: { testid: `field-${name}` } }, value ?? ''));
  const input = (name, label, value, extra = {}) =>
    el('label', {}, label, el('input', { name, value: value ?? '', dataset: { testid: `field-${name}` }, ...extra }));
  let nodes;
  switch (type) {
    case 'heading':
      nodes = [
        input('text', 'Heading', content.text, { maxlength: 2000 }),
        el(
          'label',
          {},
          'Level',
          el(
            'select',
            { name: 'level', dataset: { testid: 'field-level' } },
            [1, 2, 3].map((n) => el('option', { value: String(n), selected: Number(content.level ?? 1) === n }, `Level ${n}`)),
          ),
        ),
      ];
      break;
    case 'todo':
      nodes = [input('text', 'Todo', content.text, { maxlength: 2000 })];
      break;
    case 'bullet_list':
      nodes = [area('items', 'Items (one per line)', (content.items ?? []).join('\n'), 4)];
      break;
    case 'code':
      nodes = [area('code', 'Code', content.code, 5), input('language', 'Language', content.language ?? '', { maxlength: 50 })];
      break;
    case 'image':
      nodes = [
        input('url', 'Image URL (http or https)', content.url, { type: 'url' }),
        input('alt', 'Description', content.alt ?? '', { maxlength: 500 }),
      ];
      break;
    case 'divider':
      nodes = [el('p', { class: 'small' }, 'A divider has no content.')];
      break;
    default:
      nodes = [area('text', type === 'quote' ? 'Quote' : 'Text', content.text)];
  }
  const value = (name) =>
    nodes.map((node) => node.querySelector?.(`[name="${name}"]`) ?? (node.name === name ? node : null)).find(Boolean)?.value ?? '';
  const read = () => {
    const text = value('text').trim();
    switch (type) {
      case 'heading':
        if (!text) throw new Error('Write the heading first.');
        return { text, level: Number(value('level')) || 1 };
      case 'todo':
        if (!text) throw new Error('Write the todo first.');
        return { text, checked: Boolean(content.checked) };
      case 'bullet_list': {
        const items = value('items')
          .split('\n')
          .map((line) => line.trim())
          .filter(Boolean);
        if (items.length === 0) throw new Error('Write at least one item.');
        return { items };
      }
      case 'code':
        if (!value('code').trim()) throw new Error('Write some code first.');
        return { code: value('code'), language: value('language').trim() };
      case 'image':
        return { url: value('url').trim(), alt: value('alt').trim() };
      case 'divider':
        return {};
      default:
        if (!text) throw new Error('Write something first.');
        return { text };
    }
  };
  return { nodes, read };
}

export class BlockEditor {
  constructor({ api, view, notify }) {
    this.api = api;
    this.view = view;
    this.notify = notify;
    this.dragId = null;
    view.decorate = (node, block) => this.decorate(node, block);
    view.onRole = () => this.opened();
    this.bindAddForm();
    const list = $('block-list');
    list.addEventListener('dragover', (event) => this.dragOver(event));
    list.addEventListener('dragleave', (event) => {
      if (!list.contains(event.relatedTarget)) this.clearDropMarks();
    });
    list.addEventListener('drop', (event) => void this.drop(event));
  }

  get canWrite() {
    return this.view.role === 'owner' || this.view.role === 'editor';
  }

  /** Shows the add form to editors and owners (called when a canvas opens). */
  opened() {
    $('add-block-form').hidden = !this.canWrite;
    $('add-block-error').textContent = '';
    $('board-empty').textContent = this.canWrite ? 'No blocks yet. Add one below, or ask the AI for some.' : 'No blocks yet.';
  }

  path(blockId = '') {
    return `/canvases/${this.view.canvasId}/blocks${blockId ? `/${blockId}` : ''}`;
  }

  // ---- adding ----------------------------------------------------------------------------------

  bindAddForm() {
    const form = $('add-block-form');
    const type = $('add-block-type');
    type.replaceChildren(...BLOCK_TYPES.map((name) => el('option', { value: name }, TYPE_LABEL[name])));
    const renderFields = () => {
      this.addFields = contentFields(type.value);
      $('add-block-fields').replaceChildren(...this.addFields.nodes);
    };
    type.addEventListener('change', renderFields);
    renderFields();
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const error = $('add-block-error');
      error.textContent = '';
      let content;
      try {
        content = this.addFields.read();
      } catch (problem) {
        error.textContent = problem.message;
        return;
      }
      const button = $('add-block-submit');
      button.disabled = true;
      try {
        const { block } = await this.api.post(this.path(), { type: type.value, content });
        this.view.upsert([block]);
        renderFields();
        form.querySelector('textarea, input')?.focus();
      } catch (problem) {
        error.textContent = `Could not add the block: ${problem.message}`;
      } finally {
        button.disabled = false;
      }
    });
  }

  // ---- per-block controls ----------------------------------------------------------------------

  decorate(node, block) {
    if (!this.canWrite) return;
    node.draggable = true;
    node.classList.add('editable');
    node.addEventListener('dragstart', (event) => {
      if (node.dataset.editing === 'true') return event.preventDefault();
      this.dragId = block.id;
      node.classList.add('dragging');
      event.dataTransfer.effectAllowed = 'move';
      event.dataTransfer.setData('text/plain', block.id);
    });
    node.addEventListener('dragend', () => {
      node.classList.remove('dragging');
      this.dragId = null;
      this.clearDropMarks();
    });
    const button = (action, label, onclick) =>
      el('button', {
        type: 'button',
        class: `block-action action-${action}`,
        'aria-label': `${label}`,
        title: label,
        dataset: { testid: `block-${action}` },
        onclick,
      });
    const handle = button('move', 'Drag to move (or press ↑ / ↓ here)', () => undefined);
    handle.addEventListener('keydown', (event) => {
      if (event.key !== 'ArrowUp' && event.key !== 'ArrowDown') return;
      event.preventDefault();
      void this.step(block.id, event.key === 'ArrowUp' ? -1 : 1);
    });
    const controls = el(
      'div',
      { class: 'block-controls' },
      handle,
      // Buttons too: touch screens have no drag and drop, and not everyone finds the arrow keys.
      button('up', 'Move up', () => void this.step(block.id, -1, 'up')),
      button('down', 'Move down', () => void this.step(block.id, 1, 'down')),
      block.type === 'divider' ? null : button('edit', 'Edit block', () => this.edit(node, block.id)),
      button('delete', 'Delete block', (event) => void this.remove(event.currentTarget, block.id)),
    );
    node.prepend(controls);
  }

  /** Opens the block's edit form in place of its content. */
  edit(node, blockId) {
    const block = this.view.blocks.get(blockId);
    if (!block || node.dataset.editing === 'true') return;
    node.dataset.editing = 'true';
    node.draggable = false;
    const fields = contentFields(block.type, block.content);
    const error = el('p', { class: 'error small', role: 'alert' });
    const close = () => {
      delete node.dataset.editing;
      // Redraw from the latest stored block (a collaborator may have changed it meanwhile).
      node.removeAttribute('data-updated-at');
      this.view.renderBlocks();
    };
    const form = el(
      'form',
      { class: 'block-edit-form', dataset: { testid: 'block-edit-form' } },
      ...fields.nodes,
      el(
        'div',
        { class: 'row' },
        el('button', { type: 'submit', dataset: { testid: 'block-save' } }, 'Save'),
        el('button', { type: 'button', class: 'secondary', dataset: { testid: 'block-cancel' }, onclick: close }, 'Cancel'),
      ),
      error,
    );
    form.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') close();
      if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) form.requestSubmit();
    });
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      let content;
      try {
        content = fields.read();
      } catch (problem) {
        error.textContent = problem.message;
        return;
      }
      try {
        const { block: updated } = await this.api.request('PATCH', this.path(blockId), { content });
        delete node.dataset.editing;
        this.view.upsert([updated]);
        this.view.board.querySelector(`[data-block-id="${blockId}"] [data-testid="block-edit"]`)?.focus();
      } catch (problem) {
        error.textContent = problem.status === 404 ? 'This block was deleted meanwhile.' : `Could not save: ${problem.message}`;
      }
    });
    node.replaceChildren(form);
    form.querySelector('textarea, input')?.focus();
  }

  /** Deletes on the second press (the first asks "Delete?" for a few seconds). */
  async remove(button, blockId) {
    if (button.dataset.confirm !== 'true') {
      button.dataset.confirm = 'true';
      button.setAttribute('aria-label', 'Press again to delete');
      button.title = 'Press again to delete';
      setTimeout(() => {
        delete button.dataset.confirm;
        button.setAttribute('aria-label', 'Delete block');
        button.title = 'Delete block';
      }, 4_000);
      return;
    }
    button.disabled = true;
    try {
      await this.api.request('DELETE', this.path(blockId));
      this.view.remove([blockId]);
    } catch (problem) {
      if (problem.status === 404) this.view.remove([blockId]);
      else {
        button.disabled = false;
        this.notify(`Could not delete the block: ${problem.message}`, true);
      }
    }
  }

  // ---- moving ----------------------------------------------------------------------------------

  /** The rank-ordered ids as shown. */
  order() {
    return [...$('block-list').children].map((node) => node.dataset.blockId);
  }

  /** Moves a block so that it sits right after `afterId` (null: first). */
  async move(blockId, afterId) {
    const ids = this.order().filter((id) => id !== blockId);
    const placement = afterId ? { afterId } : ids.length ? { beforeId: ids[0] } : null;
    if (!placement) return;
    try {
      const { block } = await this.api.request('PATCH', this.path(blockId), placement);
      this.view.upsert([block]);
    } catch (problem) {
      this.notify(`Could not move the block: ${problem.message}`, true);
    }
  }

  /** Keyboard move: one place up (-1) or down (+1). */
  async step(blockId, direction, focus = 'move') {
    const ids = this.order();
    const at = ids.indexOf(blockId);
    const to = at + direction;
    if (at < 0 || to < 0 || to >= ids.length) return;
    const rest = ids.filter((id) => id !== blockId);
    await this.move(blockId, to === 0 ? null : rest[to - 1]);
    this.view.board.querySelector(`[data-block-id="${blockId}"] [data-testid="block-${focus}"]`)?.focus();
  }

  /** Where a drop at `event` would put the dragged block: `{target, after}` or null. */
  dropPoint(event) {
    const target = event.target.closest?.('[data-testid="block"]');
    if (!target || !this.dragId || target.dataset.blockId === this.dragId) return null;
    const box = target.getBoundingClientRect();
    return { target, after: event.clientY > box.top + box.height / 2 };
  }

  clearDropMarks() {
    for (const node of $('block-list').querySelectorAll('.drop-before, .drop-after')) node.classList.remove('drop-before', 'drop-after');
  }

  dragOver(event) {
    const point = this.dropPoint(event);
    if (!point) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = 'move';
    this.clearDropMarks();
    point.target.classList.add(point.after ? 'drop-after' : 'drop-before');
  }

  async drop(event) {
    const point = this.dropPoint(event);
    this.clearDropMarks();
    if (!point) return;
    event.preventDefault();
    const blockId = this.dragId;
    const ids = this.order().filter((id) => id !== blockId);
    const at = ids.indexOf(point.target.dataset.blockId);
    const afterId = point.after ? ids[at] : (ids[at - 1] ?? null);
    await this.move(blockId, afterId);
  }
}
