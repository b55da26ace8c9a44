// The open knowledge base's documents, on the Knowledge page (knowledge-page.js): files uploaded
// with the bytes' progress, a URL added, each document's ingestion followed live from its progress
// stream (`GET /knowledge/documents/:id/events`) to ready or failed with the reason, re-ingested
// (a URL), deleted, and its chunks previewed as retrieval sees them. Every text from the server is
// set as text (DOM calls, never innerHTML).
import { el } from './blocks.js';
import { pause, readEventStream } from './event-stream.js';
import { confirmingButton, describeError, setState, when } from './page-kit.js';

/** Documents followed at once; the others wait their turn (each follow holds one of the user's streams). */
const MAX_FOLLOWED = 3;
const SETTLED = new Set(['ready', 'failed']);
const STATUS_TEXT = { queued: 'Queued', parsing: 'Parsing', embedding: 'Embedding', ready: 'Ready', failed: 'Failed' };
const TYPE_NAMES = {
  'application/pdf': 'PDF',
  'application/vnd.openxmlformats-officedocument.wordprocessingml.document': 'DOCX',
  'text/html': 'HTML',
  'text/markdown': 'Markdown',
  'text/csv': 'CSV',
  'text/plain': 'Text',
};
/** What the file picker offers; the server reads the type from the bytes either way. */
const ACCEPT = '.pdf,.docx,.html,.htm,.md,.markdown,.csv,.txt,.text';

export const typeName = (mediaType) => (mediaType ? (TYPE_NAMES[mediaType] ?? mediaType) : '—');

/** `1.2 MB`, `340 kB`, `12 bytes`. */
export function size(bytes) {
  if (!bytes) return '—';
  if (bytes < 1000) return `${bytes} bytes`;
  if (bytes < 1_000_000) return `${Math.round(bytes / 100) / 10} kB`;
  return `${Math.round(bytes / 100_000) / 10} MB`;
}

/** Where a chunk sits: `page 2`, `section “Refunds”`, or both. */
export function place({ page, section }) {
  return [page !== null && page !== undefined ? `page ${page}` : '', section ? `section “${section}”` : ''].filter(Boolean).join(', ');
}

export class KnowledgeDocuments {
  /** `onChange()` is called when the base's documents were added or removed (its count changed). */
  constructor({ api, notify, root, onChange }) {
    this.api = api;
    this.notify = notify;
    this.root = root;
    this.onChange = onChange;
    this.base = null;
    /** Per document id: `{document, progress, row}`. */
    this.documents = new Map();
    this.followed = new Set();
    this.waiting = [];
    this.following = 0;
    this.controller = new AbortController();
    /** The number of the last list load: only its answer is drawn. */
    this.loads = 0;
    this.build();
  }

  $(id) {
    return this.root.querySelector(`[data-testid="${id}"]`);
  }

  build() {
    this.root.replaceChildren(
      el(
        'div',
        { class: 'knowledge-add' },
        el(
          'form',
          {
            class: 'card',
            novalidate: true,
            dataset: { testid: 'knowledge-upload-form' },
            onsubmit: (e) => (e.preventDefault(), void this.upload()),
          },
          el('h3', {}, 'Upload files'),
          el(
            'label',
            {},
            'Files',
            el('input', { type: 'file', name: 'files', multiple: true, accept: ACCEPT, dataset: { testid: 'knowledge-files' } }),
            el(
              'span',
              { class: 'small hint' },
              'PDF, DOCX, HTML, Markdown, CSV or text. The type is read from the file’s bytes, not its name.',
            ),
          ),
          el('button', { type: 'submit', dataset: { testid: 'knowledge-upload' } }, 'Upload'),
          el('progress', {
            max: 100,
            value: 0,
            hidden: true,
            'aria-label': 'Upload progress',
            dataset: { testid: 'knowledge-upload-progress' },
          }),
          el('p', { class: 'state', role: 'status', dataset: { testid: 'knowledge-upload-state' } }),
        ),
        el(
          'form',
          {
            class: 'card',
            novalidate: true,
            dataset: { testid: 'knowledge-url-form' },
            onsubmit: (e) => (e.preventDefault(), void this.addUrl()),
          },
          el('h3', {}, 'Add a web page'),
          el('label', {}, 'URL', el('input', { type: 'url', name: 'url', autocomplete: 'off', dataset: { testid: 'knowledge-url' } })),
          el(
            'label',
            {},
            'Name',
            el('input', { name: 'name', maxlength: '300', autocomplete: 'off', dataset: { testid: 'knowledge-url-name' } }),
            el('span', { class: 'small hint' }, 'Empty: the URL.'),
          ),
          el('button', { type: 'submit', dataset: { testid: 'knowledge-url-add' } }, 'Add URL'),
          el('p', { class: 'state', role: 'status', dataset: { testid: 'knowledge-url-state' } }),
        ),
      ),
      el('h3', { id: 'knowledge-documents-h' }, 'Documents'),
      el('p', { class: 'small', hidden: true, dataset: { testid: 'knowledge-documents-none' } }, 'No documents yet.'),
      el(
        'table',
        {
          class: 'usage-table knowledge-table',
          'aria-labelledby': 'knowledge-documents-h',
          dataset: { testid: 'knowledge-documents-table' },
        },
        el(
          'thead',
          {},
          el(
            'tr',
            {},
            ...['Name', 'Type', 'Size', 'Status', 'Chunks', 'Updated'].map((h) => el('th', { scope: 'col' }, h)),
            el('th', { scope: 'col' }, el('span', { class: 'visually-hidden' }, 'Actions')),
          ),
        ),
        el('tbody', { dataset: { testid: 'knowledge-document-rows' } }),
      ),
      el(
        'section',
        { class: 'knowledge-chunks', hidden: true, 'aria-labelledby': 'knowledge-chunks-h', dataset: { testid: 'knowledge-chunks' } },
        el('h3', { id: 'knowledge-chunks-h', tabindex: '-1', dataset: { testid: 'knowledge-chunks-title' } }),
        el('p', { class: 'small', dataset: { testid: 'knowledge-chunks-count' } }),
        el('ol', { class: 'chunk-list', dataset: { testid: 'knowledge-chunk-list' } }),
        el(
          'button',
          { type: 'button', class: 'secondary', dataset: { testid: 'knowledge-chunks-close' }, onclick: () => this.hideChunks() },
          'Close the preview',
        ),
      ),
    );
  }

  /** Shows `base`'s documents and follows those still being ingested. */
  async open(base) {
    if (this.base?.id !== base.id) {
      this.close();
      this.base = base;
    }
    await this.load();
  }

  /** Stops following and forgets the base (leaving it, or the page). */
  close() {
    this.controller.abort();
    this.controller = new AbortController();
    this.base = null;
    this.documents.clear();
    this.followed.clear();
    this.waiting = [];
    this.following = 0;
    this.$('knowledge-document-rows').replaceChildren();
    this.$('knowledge-upload-form').reset();
    this.$('knowledge-url-form').reset();
    setState(this.$('knowledge-upload-state'), '');
    setState(this.$('knowledge-url-state'), '');
    this.$('knowledge-upload-progress').hidden = true;
    this.hideChunks();
  }

  async load() {
    const base = this.base;
    if (!base) return;
    const load = ++this.loads;
    try {
      const { documents } = await this.api.get(`/knowledge/bases/${base.id}`);
      if (load !== this.loads || this.base !== base) return;
      const rows = this.$('knowledge-document-rows');
      const known = new Set(documents.map((document) => document.id));
      for (const id of this.documents.keys()) if (!known.has(id)) this.documents.delete(id);
      for (const document of documents) {
        const entry = this.documents.get(document.id);
        // A progress event newer than the list keeps its place (the list was read before it).
        if (entry && entry.document.revision === document.revision && !SETTLED.has(document.status) && SETTLED.has(entry.document.status))
          continue;
        this.documents.set(document.id, { document, progress: entry?.document.revision === document.revision ? entry.progress : null });
      }
      rows.replaceChildren(...documents.map((document) => this.row(document.id)));
      this.$('knowledge-documents-none').hidden = documents.length > 0;
      for (const document of documents) if (!SETTLED.has(this.documents.get(document.id).document.status)) this.follow(document.id);
    } catch (error) {
      this.notify(`Could not load the documents: ${error.message}`, true);
    }
  }

  /** The document's table row, built from what is known of it now. */
  row(id) {
    const entry = this.documents.get(id);
    const { document } = entry;
    const row = el(
      'tr',
      { dataset: { testid: 'knowledge-document', documentId: document.id, status: document.status } },
      el(
        'th',
        { scope: 'row', class: 'document-name' },
        el('span', { id: `knowledge-document-${document.id}`, dataset: { testid: 'knowledge-document-name' } }, document.name),
        document.source === 'url' && document.url && document.url !== document.name
          ? el('span', { class: 'small hint' }, document.url)
          : null,
      ),
      el('td', {}, typeName(document.mediaType)),
      el('td', {}, size(document.sizeBytes)),
      el('td', { dataset: { testid: 'knowledge-document-status' } }, this.status(entry)),
      el('td', { class: 'num', dataset: { testid: 'knowledge-document-chunks' } }, String(document.chunkCount)),
      el('td', {}, when(document.updatedAt)),
      el('td', { class: 'actions' }, this.actions(document)),
    );
    entry.row = row;
    return row;
  }

  /** Where the ingestion stands: the step, chunks stored of the total while embedding, the reason when it failed. */
  status({ document, progress }) {
    const step = progress?.status ?? document.status;
    const parts = [el('span', { class: `badge status-${step}`, dataset: { testid: 'knowledge-status-badge' } }, STATUS_TEXT[step] ?? step)];
    if (step === 'embedding' && progress?.chunksTotal) {
      parts.push(
        el('progress', {
          max: progress.chunksTotal,
          value: progress.chunksStored ?? 0,
          'aria-label': `Chunks of ${document.name} stored`,
        }),
        el('span', { class: 'small' }, `${progress.chunksStored ?? 0} of ${progress.chunksTotal} chunks`),
      );
    }
    const reason = step === 'failed' ? (progress?.error ?? document.error) : null;
    if (reason) parts.push(el('span', { class: 'reason', dataset: { testid: 'knowledge-document-error' } }, reason));
    return parts;
  }

  actions(document) {
    const settled = SETTLED.has(document.status);
    return el(
      'div',
      { class: 'row' },
      document.status === 'ready' && document.chunkCount > 0
        ? el(
            'button',
            {
              type: 'button',
              class: 'secondary',
              'aria-label': `Chunks of ${document.name}`,
              dataset: { testid: 'knowledge-document-preview' },
              onclick: () => void this.showChunks(document),
            },
            'Chunks',
          )
        : null,
      // An upload keeps its bytes only until it is ingested: it is uploaded again instead.
      document.source === 'url' && settled
        ? el(
            'button',
            {
              type: 'button',
              class: 'secondary',
              'aria-label': `Re-ingest ${document.name}`,
              dataset: { testid: 'knowledge-document-reingest' },
              onclick: () => void this.reingest(document),
            },
            'Re-ingest',
          )
        : null,
      confirmingButton(
        'Delete',
        'Click again to delete',
        () => this.remove(document),
        // Its name says what it does now (Delete, then the confirmation); the description names the document.
        { 'aria-describedby': `knowledge-document-${document.id}`, dataset: { testid: 'knowledge-document-delete' } },
        { key: `knowledge-document:${document.id}` },
      ),
    );
  }

  /** Draws the document's row again in place. */
  redraw(id) {
    const entry = this.documents.get(id);
    if (!entry?.row?.isConnected) return;
    entry.row.replaceWith(this.row(id));
  }

  async upload() {
    const base = this.base;
    const form = this.$('knowledge-upload-form');
    const state = this.$('knowledge-upload-state');
    const bar = this.$('knowledge-upload-progress');
    const files = [...form.elements.files.files];
    if (!base) return;
    if (!files.length) return setState(state, 'Choose one or more files first.', 'error');
    const data = new FormData();
    for (const file of files) data.append('file', file, file.name);
    const what = files.length === 1 ? files[0].name : `${files.length} files`;
    const button = this.$('knowledge-upload');
    button.disabled = true;
    bar.hidden = false;
    bar.value = 0;
    setState(state, `Uploading ${what}…`, 'busy');
    try {
      const { documents } = await this.api.upload(`/knowledge/bases/${base.id}/documents`, data, {
        signal: this.controller.signal,
        onProgress: (sent, total) => {
          if (!total) return;
          bar.value = Math.round((sent / total) * 100);
          setState(state, `Uploading ${what}… ${bar.value}%`, 'busy');
        },
      });
      form.reset();
      const failed = documents.filter((document) => document.status === 'failed');
      setState(
        state,
        failed.length
          ? `Uploaded ${what}. Refused: ${failed.map((document) => `${document.name} (${document.error})`).join('; ')}`
          : `Uploaded ${what}; ingesting.`,
        failed.length ? 'error' : 'ok',
      );
      this.onChange();
      await this.load();
    } catch (error) {
      if (error.name !== 'AbortError') setState(state, describeError(error), 'error');
    } finally {
      button.disabled = false;
      bar.hidden = true;
    }
  }

  async addUrl() {
    const base = this.base;
    const form = this.$('knowledge-url-form');
    const state = this.$('knowledge-url-state');
    const url = form.elements.url.value.trim();
    const name = form.elements.name.value.trim();
    if (!base) return;
    if (!url) return setState(state, 'Give the address of the page or file.', 'error');
    setState(state, 'Adding…', 'busy');
    try {
      const { document } = await this.api.post(`/knowledge/bases/${base.id}/urls`, { url, ...(name ? { name } : {}) });
      form.reset();
      setState(
        state,
        document.status === 'failed' ? `Refused: ${document.error}` : `Added ${document.name}; fetching.`,
        document.status === 'failed' ? 'error' : 'ok',
      );
      this.onChange();
      await this.load();
    } catch (error) {
      setState(state, describeError(error), 'error');
    }
  }

  async reingest(document) {
    try {
      const { document: queued } = await this.api.post(`/knowledge/documents/${document.id}/reingest`, {});
      this.documents.set(queued.id, { document: queued, progress: null, row: this.documents.get(queued.id)?.row });
      this.redraw(queued.id);
      this.follow(queued.id);
    } catch (error) {
      this.notify(`Could not re-ingest ${document.name}: ${error.message}`, true);
    }
  }

  async remove(document) {
    try {
      await this.api.request('DELETE', `/knowledge/documents/${document.id}`);
      this.notify(`Deleted ${document.name}.`);
      if (this.$('knowledge-chunks').dataset.documentId === document.id) this.hideChunks();
      this.onChange();
      await this.load();
    } catch (error) {
      this.notify(`Could not delete ${document.name}: ${error.message}`, true);
    }
  }

  /** Follows the document's ingestion when a turn is free, else once one is. */
  follow(id) {
    if (this.followed.has(id)) return;
    this.followed.add(id);
    this.waiting.push(id);
    this.next();
  }

  next() {
    while (this.following < MAX_FOLLOWED && this.waiting.length) {
      const id = this.waiting.shift();
      const signal = this.controller.signal;
      this.following += 1;
      void this.watch(id, signal).finally(() => {
        // A follow of a base since closed counts for nothing in the new one's turns.
        if (signal.aborted) return;
        this.following -= 1;
        this.followed.delete(id);
        this.next();
      });
    }
  }

  /**
   * Reads the document's progress stream to ready or failed. A stream that ends early or drops
   * (a restart, a network blip) is read again after a pause, once the document says it is not settled.
   */
  async watch(id, signal) {
    for (let attempt = 0; !signal.aborted; attempt += 1) {
      let settled = false;
      try {
        await readEventStream(this.api, `/knowledge/documents/${id}/events`, {
          signal,
          onMessage: ({ event, data }) => {
            if (event !== 'progress' || data?.documentId !== id || signal.aborted) return;
            settled = this.progressed(id, data) || settled;
          },
        });
      } catch (error) {
        if (signal.aborted) return;
        if (error.status === 404) return this.gone(id);
      }
      const document = await this.refresh(id, signal);
      if (settled || !document || SETTLED.has(document.status)) return;
      try {
        await pause(Math.min(1_000 * 2 ** attempt, 10_000), signal);
      } catch (error) {
        // Aborted: the document is no longer followed.
        if (signal.aborted) return;
        throw error;
      }
    }
  }

  /** One progress event: the row follows it. True when it settled the document. */
  progressed(id, progress) {
    const entry = this.documents.get(id);
    if (!entry || progress.revision < entry.document.revision) return false;
    entry.progress = progress;
    entry.document = { ...entry.document, status: progress.status, error: progress.error ?? entry.document.error };
    this.redraw(id);
    return SETTLED.has(progress.status);
  }

  /** Reads the document again (its chunk count once settled), says how it ended, and draws it. */
  async refresh(id, signal) {
    try {
      const { document } = await this.api.get(`/knowledge/documents/${id}`);
      const entry = this.documents.get(id);
      if (signal.aborted || !entry) return document;
      const wasSettled = entry.announced === document.revision;
      this.documents.set(id, { ...entry, document, progress: null });
      if (SETTLED.has(document.status) && !wasSettled) {
        this.documents.get(id).announced = document.revision;
        this.notify(
          document.status === 'ready'
            ? `${document.name} is ready: ${document.chunkCount} chunk${document.chunkCount === 1 ? '' : 's'}.`
            : `${document.name} failed: ${document.error ?? 'no reason given'}`,
          document.status === 'failed',
        );
      }
      this.redraw(id);
      return document;
    } catch (error) {
      if (error.status === 404) this.gone(id);
      return null;
    }
  }

  /** The document was deleted elsewhere. */
  gone(id) {
    this.documents.get(id)?.row?.remove();
    this.documents.delete(id);
    this.$('knowledge-documents-none').hidden = this.documents.size > 0;
  }

  async showChunks(document) {
    const section = this.$('knowledge-chunks');
    try {
      const { chunks } = await this.api.get(`/knowledge/documents/${document.id}/chunks`);
      section.dataset.documentId = document.id;
      this.$('knowledge-chunks-title').textContent = `Chunks of ${document.name}`;
      this.$('knowledge-chunks-count').textContent =
        `${chunks.length} chunk${chunks.length === 1 ? '' : 's'}, in order: what a search reads.`;
      this.$('knowledge-chunk-list').replaceChildren(
        ...chunks.map((chunk) =>
          el(
            'li',
            { class: 'chunk', dataset: { testid: 'knowledge-chunk' } },
            el(
              'p',
              { class: 'small chunk-head' },
              [`#${chunk.ordinal + 1}`, place(chunk), `${chunk.tokens} tokens`].filter(Boolean).join(' · '),
            ),
            el('pre', { class: 'chunk-text' }, chunk.text),
          ),
        ),
      );
      section.hidden = false;
      this.$('knowledge-chunks-title').focus();
    } catch (error) {
      this.notify(`Could not load the chunks of ${document.name}: ${error.message}`, true);
    }
  }

  hideChunks() {
    const section = this.$('knowledge-chunks');
    section.hidden = true;
    delete section.dataset.documentId;
    this.$('knowledge-chunk-list').replaceChildren();
  }
}
