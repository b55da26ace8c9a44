// The Knowledge page (`#/knowledge`, `#/knowledge/<baseId>`): the user's knowledge bases. Create
// and delete a base; open one to upload files and add URLs, follow their ingestion and preview
// their chunks (knowledge-documents.js); search the open base, or every base, and read each hit's
// document, page or section and snippet. Only the owner sees a base: another's is "not found".
import { el } from './blocks.js';
import { KnowledgeDocuments, place } from './knowledge-documents.js';
import { confirmingButton, describeError, pageRoot, setState, when } from './page-kit.js';

/** Characters of a hit's text shown as its snippet. */
const SNIPPET = 320;

/** The hit's text cut near `SNIPPET` characters at a word, with an ellipsis when cut. */
export function snippet(text) {
  const flat = String(text).replace(/\s+/g, ' ').trim();
  if (flat.length <= SNIPPET) return flat;
  const cut = flat.lastIndexOf(' ', SNIPPET);
  return `${flat.slice(0, cut > SNIPPET / 2 ? cut : SNIPPET)}…`;
}

/** `text` as nodes, the words of `query` (3 letters or more) marked: text nodes and `<mark>`, no markup parsed. */
export function marked(text, query) {
  const words = [...new Set(query.toLowerCase().match(/[\p{L}\p{N}]{3,}/gu) ?? [])];
  if (!words.length) return [text];
  const pattern = new RegExp(`(${words.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')})`, 'giu');
  return text.split(pattern).map((part, index) => (index % 2 ? el('mark', {}, part) : part));
}

export class KnowledgePage {
  constructor({ api, notify }) {
    this.api = api;
    this.notify = notify;
    this.bases = [];
    this.base = null;
    /** The number of the last search: only its answer is drawn. */
    this.searches = 0;
    ({ root: this.root, $: this.$ } = pageRoot('knowledge-view'));
    this.build();
    this.documents = new KnowledgeDocuments({
      api,
      notify,
      root: this.$('knowledge-documents'),
      onChange: () => void this.loadBases(),
    });
  }

  build() {
    this.root.replaceChildren(
      el('h1', { id: 'knowledge-h' }, 'Knowledge'),
      el(
        'p',
        { class: 'small' },
        'A knowledge base holds your documents, split into chunks that the assistant, your chatflows and their embeds search to answer with citations. Only you see your bases.',
      ),
      el(
        'div',
        { class: 'page-columns' },
        el(
          'aside',
          { class: 'card', 'aria-labelledby': 'knowledge-bases-h' },
          el('h2', { id: 'knowledge-bases-h' }, 'Your knowledge bases'),
          el('ul', { class: 'item-list', dataset: { testid: 'knowledge-base-list' } }),
          el('p', { class: 'small', hidden: true, dataset: { testid: 'knowledge-none' } }, 'No knowledge bases yet.'),
          el(
            'form',
            { novalidate: true, dataset: { testid: 'knowledge-base-form' }, onsubmit: (e) => (e.preventDefault(), void this.create()) },
            el('h3', {}, 'New knowledge base'),
            el(
              'label',
              {},
              'Name',
              el('input', {
                name: 'name',
                required: true,
                maxlength: '200',
                autocomplete: 'off',
                dataset: { testid: 'knowledge-base-name' },
              }),
            ),
            el(
              'label',
              {},
              'Description',
              el('textarea', { name: 'description', rows: '2', maxlength: '2000', dataset: { testid: 'knowledge-base-description' } }),
            ),
            el('button', { type: 'submit', dataset: { testid: 'knowledge-base-create' } }, 'Create'),
            el('p', { class: 'state', role: 'status', dataset: { testid: 'knowledge-base-state' } }),
          ),
        ),
        el(
          'div',
          { class: 'page-main' },
          el('p', { class: 'small', dataset: { testid: 'knowledge-pick' } }, 'Open a knowledge base, or create one, to add documents.'),
          el(
            'section',
            { class: 'card', hidden: true, 'aria-labelledby': 'knowledge-base-h', dataset: { testid: 'knowledge-base' } },
            el(
              'div',
              { class: 'row knowledge-base-head' },
              el('h2', { id: 'knowledge-base-h', tabindex: '-1', dataset: { testid: 'knowledge-base-title' } }),
              el('span', { class: 'small', dataset: { testid: 'knowledge-base-meta' } }),
              el('span', { dataset: { testid: 'knowledge-base-delete-slot' } }),
            ),
            el('p', { class: 'small', dataset: { testid: 'knowledge-base-about' } }),
            el('div', { dataset: { testid: 'knowledge-documents' } }),
          ),
          el(
            'section',
            { class: 'card knowledge-search', 'aria-labelledby': 'knowledge-search-h', dataset: { testid: 'knowledge-search' } },
            el('h2', { id: 'knowledge-search-h' }, 'Search'),
            el(
              'form',
              {
                role: 'search',
                class: 'row',
                dataset: { testid: 'knowledge-search-form' },
                onsubmit: (e) => (e.preventDefault(), void this.search()),
              },
              el(
                'label',
                { class: 'grow' },
                'Question or words',
                el('input', {
                  type: 'search',
                  name: 'query',
                  maxlength: '2000',
                  autocomplete: 'off',
                  dataset: { testid: 'knowledge-query' },
                }),
              ),
              el('button', { type: 'submit', dataset: { testid: 'knowledge-search-submit' } }, 'Search'),
            ),
            el('p', { class: 'small', dataset: { testid: 'knowledge-search-scope' } }),
            el('p', { class: 'state', role: 'status', dataset: { testid: 'knowledge-search-state' } }),
            el('ol', { class: 'hit-list', 'aria-label': 'Search results', dataset: { testid: 'knowledge-hits' } }),
          ),
        ),
      ),
    );
  }

  /** Shows the list, and the base `baseId` when given. */
  async show(baseId) {
    await this.loadBases();
    const base = baseId ? this.bases.find((b) => b.id === baseId) : null;
    if (baseId && !base) {
      this.notify('That knowledge base was not found: it may have been deleted, or it is not yours.', true);
      location.hash = '#/knowledge';
      return;
    }
    if (base?.id !== this.base?.id) this.clearHits();
    this.base = base;
    this.drawBase();
    if (base) {
      await this.documents.open(base);
      this.$('knowledge-base-title').focus();
    } else this.documents.close();
  }

  /** Leaving the page stops following ingestions and forgets the results. */
  reset() {
    this.documents.close();
    this.base = null;
    this.clearHits();
  }

  async loadBases() {
    try {
      const { bases } = await this.api.get('/knowledge/bases');
      this.bases = bases;
      if (this.base) this.base = bases.find((b) => b.id === this.base.id) ?? this.base;
      this.$('knowledge-none').hidden = bases.length > 0;
      this.$('knowledge-base-list').replaceChildren(
        ...bases.map((base) =>
          el(
            'li',
            { class: base.id === this.base?.id ? 'current' : '', dataset: { testid: 'knowledge-base-item', baseId: base.id } },
            el('a', { href: `#/knowledge/${base.id}`, 'aria-current': base.id === this.base?.id ? 'page' : undefined }, base.name),
            el('span', { class: 'small' }, `${base.documentCount} document${base.documentCount === 1 ? '' : 's'}`),
          ),
        ),
      );
      if (this.base) this.drawMeta();
    } catch (error) {
      this.notify(`Could not load your knowledge bases: ${error.message}`, true);
    }
  }

  drawBase() {
    const base = this.base;
    this.$('knowledge-pick').hidden = Boolean(base);
    this.$('knowledge-base').hidden = !base;
    for (const item of this.$('knowledge-base-list').children) {
      const current = item.dataset.baseId === base?.id;
      item.classList.toggle('current', current);
      const link = item.querySelector('a');
      if (current) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
    this.$('knowledge-search-scope').textContent = base ? `Searches “${base.name}”.` : 'Searches all your knowledge bases.';
    if (!base) return;
    this.$('knowledge-base-title').textContent = base.name;
    this.$('knowledge-base-about').textContent = base.description;
    this.$('knowledge-base-about').hidden = !base.description;
    this.drawMeta();
    this.$('knowledge-base-delete-slot').replaceChildren(
      confirmingButton(
        'Delete base',
        'Click again to delete it and its documents',
        () => this.remove(base),
        { dataset: { testid: 'knowledge-base-delete' } },
        { key: `knowledge-base:${base.id}` },
      ),
    );
  }

  drawMeta() {
    const base = this.base;
    this.$('knowledge-base-meta').textContent =
      `${base.documentCount} document${base.documentCount === 1 ? '' : 's'} · created ${when(base.createdAt)}`;
  }

  async create() {
    const form = this.$('knowledge-base-form');
    const state = this.$('knowledge-base-state');
    const name = form.elements.name.value.trim();
    const description = form.elements.description.value.trim();
    if (!name) return setState(state, 'Give the base a name.', 'error');
    setState(state, 'Creating…', 'busy');
    try {
      const { base } = await this.api.post('/knowledge/bases', { name, ...(description ? { description } : {}) });
      form.reset();
      setState(state, `Created ${base.name}.`);
      location.hash = `#/knowledge/${base.id}`;
    } catch (error) {
      setState(state, describeError(error), 'error');
    }
  }

  async remove(base) {
    try {
      await this.api.request('DELETE', `/knowledge/bases/${base.id}`);
      this.notify(`Deleted ${base.name} with its documents.`);
      if (location.hash === '#/knowledge') await this.show();
      else location.hash = '#/knowledge';
    } catch (error) {
      this.notify(`Could not delete ${base.name}: ${error.message}`, true);
    }
  }

  clearHits() {
    this.searches += 1;
    this.$('knowledge-hits').replaceChildren();
    setState(this.$('knowledge-search-state'), '');
  }

  async search() {
    const query = this.$('knowledge-search-form').elements.query.value.trim();
    const state = this.$('knowledge-search-state');
    const list = this.$('knowledge-hits');
    if (!query) return setState(state, 'Type a question or some words.', 'error');
    const search = ++this.searches;
    setState(state, 'Searching…', 'busy');
    try {
      const { hits } = await this.api.post('/knowledge/search', { query, limit: 10, ...(this.base ? { baseIds: [this.base.id] } : {}) });
      if (search !== this.searches) return;
      const names = new Map(this.bases.map((base) => [base.id, base.name]));
      list.replaceChildren(
        ...hits.map((hit) =>
          el(
            'li',
            { class: 'hit', dataset: { testid: 'knowledge-hit', documentId: hit.documentId } },
            el(
              'p',
              { class: 'hit-head' },
              el('strong', { dataset: { testid: 'knowledge-hit-document' } }, hit.documentName),
              el('span', { class: 'small', dataset: { testid: 'knowledge-hit-place' } }, place(hit) || `chunk ${hit.ordinal + 1}`),
              this.base ? null : el('span', { class: 'small' }, `in ${names.get(hit.baseId) ?? 'a base'}`),
            ),
            el('blockquote', { class: 'snippet', dataset: { testid: 'knowledge-hit-snippet' } }, ...marked(snippet(hit.text), query)),
          ),
        ),
      );
      setState(state, hits.length ? `${hits.length} passage${hits.length === 1 ? '' : 's'}, best first.` : 'No passage matches.');
    } catch (error) {
      if (search === this.searches) setState(state, describeError(error), 'error');
    }
  }
}
