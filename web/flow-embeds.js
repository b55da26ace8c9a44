// A chatflow's embeds (the public chat widget): list them with their allowed origins, create one
// (its token is shown once, with the snippet to paste), change an embed's origins, revoke it, and
// preview the widget in a frame of this console's origin (/console/embed-preview.html, which
// loads /embed.js exactly as a site does; it answers only when this origin is one of the embed's).
import { el } from './blocks.js';

const originsOf = (text) =>
  text
    .split(/[\s,]+/)
    .map((origin) => origin.trim())
    .filter(Boolean);

/** The tag a site pastes into its pages. */
export const snippet = (token) => `<script src="${location.origin}/embed.js" data-embed-token="${token}" data-title="Chat"></script>`;

export class FlowEmbeds {
  constructor({ api, notify }) {
    this.api = api;
    this.notify = notify;
    this.flow = null;
    /** Tokens shown this page's life (by embed id): the API never shows one again. */
    this.tokens = new Map();
    this.root = el(
      'section',
      { class: 'card embeds', hidden: true, dataset: { testid: 'flow-embeds' }, 'aria-labelledby': 'flow-embeds-h' },
      el('h2', { id: 'flow-embeds-h' }, 'Embeds'),
      el(
        'p',
        { class: 'small' },
        'A chat box for other websites. It answers only on pages of the origins you list (scheme, host and port, such as https://shop.example.com).',
      ),
      el(
        'form',
        { class: 'embed-create', dataset: { testid: 'embed-create-form' }, onsubmit: (e) => (e.preventDefault(), void this.create()) },
        el(
          'label',
          {},
          'Allowed origins (one per line) ',
          el('textarea', { rows: '2', required: true, dataset: { testid: 'embed-origins' }, 'aria-describedby': 'embed-create-error' }),
        ),
        el(
          'label',
          { class: 'check' },
          el('input', { type: 'checkbox', dataset: { testid: 'embed-allow-console' } }),
          ` Also allow this console (${location.origin}), for the preview`,
        ),
        el('button', { type: 'submit', dataset: { testid: 'embed-create' } }, 'Create embed'),
        el('ul', { id: 'embed-create-error', class: 'flow-errors', role: 'alert', dataset: { testid: 'embed-create-errors' } }),
      ),
      el('ul', { class: 'embed-list', dataset: { testid: 'embed-list' } }),
      el(
        'div',
        { class: 'embed-preview', hidden: true, dataset: { testid: 'embed-preview' } },
        el('h3', {}, 'Preview'),
        el('p', { class: 'small', dataset: { testid: 'embed-preview-note' } }),
        el('iframe', { title: 'Embed preview', dataset: { testid: 'embed-preview-frame' } }),
      ),
    );
  }

  $(id) {
    return this.root.querySelector(`[data-testid="${id}"]`);
  }

  async show(flow) {
    this.flow = flow;
    this.root.hidden = flow?.type !== 'chatflow';
    this.$('embed-preview').hidden = true;
    this.$('embed-preview-frame').removeAttribute('src');
    window.removeEventListener('message', this.previewAsks);
    this.$('embed-create-errors').replaceChildren();
    if (flow?.type === 'chatflow') await this.load();
  }

  async load() {
    const flow = this.flow;
    try {
      const { embeds } = await this.api.get(`/flows/${flow.id}/embeds`);
      if (this.flow !== flow) return;
      this.$('embed-list').replaceChildren(...embeds.map((embed) => this.item(embed)));
      if (!embeds.length) this.$('embed-list').append(el('li', { class: 'small' }, 'No embeds yet.'));
    } catch (error) {
      this.notify(`Could not list the embeds: ${error.message}`, true);
    }
  }

  problems(list, error) {
    const details = Array.isArray(error.details) ? error.details : [];
    list.replaceChildren(
      ...(details.length ? details : [{ message: error.message }]).map((d) =>
        el(
          'li',
          { dataset: { testid: 'embed-error' } },
          d.path ? `${String(d.path).replace(/^allowedOrigins\./, 'Origin #')}: ` : '',
          d.message,
        ),
      ),
    );
  }

  async create() {
    const origins = originsOf(this.$('embed-origins').value);
    if (this.$('embed-allow-console').checked) origins.push(location.origin);
    const errors = this.$('embed-create-errors');
    errors.replaceChildren();
    try {
      const { embedId, embedToken } = await this.api.post(`/flows/${this.flow.id}/embeds`, { allowedOrigins: origins });
      this.tokens.set(embedId, embedToken);
      this.$('embed-origins').value = '';
      this.$('embed-allow-console').checked = false;
      // The list is drawn again before the notice: nothing touched after it is redrawn away.
      await this.load();
      this.notify('Embed created: copy its snippet now, its token is shown only this once.');
    } catch (error) {
      this.problems(errors, error);
    }
  }

  item(embed) {
    const token = this.tokens.get(embed.embedId);
    const code = snippet(token ?? 'YOUR_EMBED_TOKEN');
    const errors = el('ul', { class: 'flow-errors', role: 'alert' });
    const editor = el('textarea', { rows: '2', 'aria-label': 'Allowed origins (one per line)', dataset: { testid: 'embed-edit-origins' } });
    editor.value = embed.allowedOrigins.join('\n');
    return el(
      'li',
      { class: 'embed', dataset: { testid: 'embed', embedId: embed.embedId } },
      el(
        'p',
        {},
        el('strong', {}, 'Origins: '),
        el('span', { dataset: { testid: 'embed-origin-list' } }, embed.allowedOrigins.join(', ')),
        el('span', { class: 'small' }, ` · created ${new Date(embed.createdAt).toLocaleString()}`),
        el('span', { class: 'small', dataset: { testid: 'embed-version' } }, ` · answers with flow version ${embed.version}`),
      ),
      el(
        'div',
        { class: 'snippet' },
        el('label', {}, token ? 'Snippet (its token is shown only now)' : 'Snippet (put the token you were given in place)'),
        el('pre', { dataset: { testid: 'embed-snippet' } }, code),
        el(
          'button',
          { type: 'button', class: 'secondary', dataset: { testid: 'embed-copy' }, onclick: () => void this.copy(code) },
          'Copy snippet',
        ),
      ),
      el(
        'details',
        {},
        el('summary', {}, 'Change origins'),
        editor,
        el(
          'button',
          { type: 'button', dataset: { testid: 'embed-save-origins' }, onclick: () => void this.saveOrigins(embed, editor, errors) },
          'Save origins',
        ),
        errors,
      ),
      el(
        'div',
        { class: 'row' },
        token
          ? el(
              'button',
              { type: 'button', class: 'secondary', dataset: { testid: 'embed-preview-open' }, onclick: () => this.preview(embed, token) },
              'Preview',
            )
          : null,
        el(
          'button',
          { type: 'button', class: 'danger', dataset: { testid: 'embed-delete' }, onclick: () => void this.remove(embed) },
          'Revoke',
        ),
      ),
    );
  }

  async copy(code) {
    try {
      await navigator.clipboard.writeText(code);
      this.notify('Snippet copied.');
    } catch {
      this.notify('Copying is blocked here: select the snippet and copy it.', true);
    }
  }

  async saveOrigins(embed, editor, errors) {
    errors.replaceChildren();
    try {
      await this.api.request('PATCH', `/flows/${this.flow.id}/embeds/${embed.embedId}`, { allowedOrigins: originsOf(editor.value) });
      await this.load();
      this.notify('Origins saved.');
    } catch (error) {
      this.problems(errors, error);
    }
  }

  async remove(embed) {
    if (!confirm('Revoke this embed? Sites using it stop getting answers at once.')) return;
    try {
      await this.api.request('DELETE', `/flows/${this.flow.id}/embeds/${embed.embedId}`);
      this.tokens.delete(embed.embedId);
      this.$('embed-preview').hidden = true;
      await this.load();
    } catch (error) {
      this.notify(`Could not revoke: ${error.message}`, true);
    }
  }

  /**
   * The widget in a frame of this origin. The token goes to the frame by postMessage once it asks
   * (never in its address, so never sent to a server nor runnable from a link).
   */
  preview(embed, token) {
    const allowed = embed.allowedOrigins.includes(location.origin);
    this.$('embed-preview-note').textContent = allowed
      ? 'The widget as a site shows it. Messages here are real turns of this chatflow.'
      : `This console (${location.origin}) is not one of the embed's origins, so the widget here will be refused: add it to try the preview.`;
    const frame = this.$('embed-preview-frame');
    const title = this.flow.name;
    window.removeEventListener('message', this.previewAsks);
    // The frame asks once loaded; only this frame, from this origin, is answered.
    this.previewAsks = (event) => {
      if (event.source !== frame.contentWindow || event.origin !== location.origin) return;
      if (event.data?.type !== 'switchboard:embed-preview-ready') return;
      frame.contentWindow.postMessage({ type: 'switchboard:embed-preview', token, title }, location.origin);
    };
    window.addEventListener('message', this.previewAsks);
    // A new query each time, so the frame loads again.
    this.previews = (this.previews ?? 0) + 1;
    frame.src = `/console/embed-preview.html?n=${this.previews}`;
    this.$('embed-preview').hidden = false;
    frame.scrollIntoView({ block: 'nearest' });
  }
}
