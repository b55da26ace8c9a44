// Evaluation datasets (flow-evaluations.js): the owner's datasets, listed with their rows and
// where they came from, a few rows previewed, deleted (with the evaluations that ran them). A new
// one is pasted or uploaded — CSV (a header of input keys and an `expected` column) or JSON rows
// (`[{input: {…}, expected}]`) — or made from this flow's past completed executions (their inputs,
// their outputs as the expected outputs). The API's problems are shown under the form.
import { el } from './blocks.js';
import { ask } from './confirm-dialog.js';

const when = (iso) => (iso ? new Date(iso).toLocaleString() : '');
const short = (value, max = 80) => {
  const text = typeof value === 'string' ? value : JSON.stringify(value ?? null);
  return text.length > max ? `${text.slice(0, max)}…` : text;
};

/** JSON rows as typed: an array of rows or `{rows}`; throws with what is wrong. */
export function parseJsonRows(text) {
  const value = JSON.parse(text);
  const rows = Array.isArray(value) ? value : value?.rows;
  if (!Array.isArray(rows)) throw new Error('give an array of rows: [{"input": {…}, "expected": …}]');
  return rows;
}

export class FlowDatasets {
  /** `onChange(datasets)` after every read of the list. */
  constructor({ api, notify, onChange }) {
    this.api = api;
    this.notify = notify;
    this.onChange = onChange;
    this.flow = null;
    this.versions = [];
    this.datasets = [];
    // The form is built when first opened (and again for another flow): closed, none of its fields exist.
    this.root = el(
      'section',
      { class: 'sub datasets', dataset: { testid: 'eval-datasets' }, 'aria-labelledby': 'eval-datasets-h' },
      el('h3', { id: 'eval-datasets-h' }, 'Datasets'),
      el('ul', { class: 'dataset-list', dataset: { testid: 'dataset-list' } }),
      el(
        'details',
        { class: 'create-box', dataset: { testid: 'dataset-create' }, ontoggle: (e) => e.target.open && this.openForm() },
        el('summary', {}, 'New dataset'),
        el('div', { dataset: { testid: 'dataset-form-slot' } }),
      ),
    );
  }

  form() {
    const text = el('textarea', {
      rows: '5',
      class: 'code',
      spellcheck: 'false',
      placeholder: 'word,expected\nparis,PARIS',
      dataset: { testid: 'dataset-text' },
    });
    return el(
      'form',
      { class: 'dataset-form', dataset: { testid: 'dataset-create-form' }, onsubmit: (e) => (e.preventDefault(), void this.create()) },
      el('label', {}, 'Dataset name ', el('input', { maxlength: '200', autocomplete: 'off', dataset: { testid: 'dataset-name' } })),
      el(
        'label',
        {},
        'Rows from ',
        el(
          'select',
          { dataset: { testid: 'dataset-source' }, onchange: () => this.sourceChanged() },
          el('option', { value: 'csv' }, 'CSV (a header of input keys and an “expected” column)'),
          el('option', { value: 'json' }, 'JSON rows ([{"input": {…}, "expected": …}])'),
          el('option', { value: 'executions' }, 'This flow’s past completed executions'),
        ),
      ),
      el(
        'div',
        { class: 'dataset-upload', dataset: { testid: 'dataset-upload-fields' } },
        el(
          'label',
          {},
          'Upload a file ',
          el('input', {
            type: 'file',
            accept: '.csv,.json,text/csv,application/json',
            dataset: { testid: 'dataset-file' },
            onchange: (e) => void this.readFile(e.target.files?.[0]),
          }),
        ),
        el('label', {}, 'or paste the rows ', text),
      ),
      el(
        'div',
        { class: 'field-row', hidden: true, dataset: { testid: 'dataset-executions-fields' } },
        el('label', {}, 'The newest ', el('input', { type: 'number', min: '1', value: '20', dataset: { testid: 'dataset-limit' } })),
        el(
          'label',
          {},
          'Of version ',
          el(
            'select',
            { dataset: { testid: 'dataset-version' } },
            el('option', { value: '' }, 'any'),
            this.versions.map((v) => el('option', { value: String(v.version) }, `v${v.version}`)),
          ),
        ),
      ),
      el('button', { type: 'submit', dataset: { testid: 'dataset-save' } }, 'Create dataset'),
      el('ul', { class: 'flow-errors', role: 'alert', dataset: { testid: 'dataset-errors' } }),
    );
  }

  openForm() {
    const slot = this.$('dataset-form-slot');
    if (!slot.firstChild && this.flow) slot.replaceChildren(this.form());
  }

  $(id) {
    return this.root.querySelector(`[data-testid="${id}"]`);
  }

  /** For `flow` (made-from-executions datasets come from it); `versions` fill its version choice. */
  async show(flow, versions = []) {
    this.flow = flow;
    this.versions = versions;
    this.$('dataset-create').open = false;
    this.$('dataset-form-slot').replaceChildren();
    await this.load();
  }

  async load() {
    try {
      // The newest 200; older ones stay reachable through the API's pages.
      this.datasets = (await this.api.get('/evaluations/datasets?limit=200')).datasets;
    } catch (error) {
      this.datasets = [];
      this.notify(`Could not list the datasets: ${error.message}`, true);
    }
    this.render();
    this.onChange(this.datasets);
  }

  render() {
    const list = this.$('dataset-list');
    list.replaceChildren(
      ...this.datasets.map((dataset) =>
        el(
          'li',
          { dataset: { testid: 'eval-dataset', datasetId: dataset.id } },
          el('strong', {}, dataset.name),
          ` ${dataset.rowCount} ${dataset.rowCount === 1 ? 'row' : 'rows'} · ${dataset.source === 'executions' ? 'from executions' : 'uploaded'} · ${when(dataset.createdAt)} `,
          el(
            'details',
            { class: 'dataset-rows', ontoggle: (e) => e.target.open && void this.preview(dataset, e.target) },
            el('summary', {}, 'Rows'),
            el('p', { class: 'small' }, 'Reading…'),
          ),
          el(
            'button',
            { type: 'button', class: 'danger', dataset: { testid: 'dataset-delete' }, onclick: () => void this.remove(dataset) },
            'Delete',
          ),
        ),
      ),
    );
    if (!this.datasets.length) list.append(el('li', { class: 'small' }, 'No datasets yet.'));
  }

  /** The first rows of a dataset, as a table of input and expected output. */
  async preview(dataset, details) {
    try {
      const { rows } = await this.api.get(`/evaluations/datasets/${dataset.id}?limit=20`);
      details.replaceChildren(
        details.querySelector('summary'),
        el(
          'table',
          { class: 'eval-table' },
          el('thead', {}, el('tr', {}, el('th', {}, '#'), el('th', {}, 'Input'), el('th', {}, 'Expected'))),
          el(
            'tbody',
            {},
            rows.map((row) =>
              el('tr', {}, el('td', {}, String(row.position + 1)), el('td', {}, short(row.input)), el('td', {}, short(row.expected))),
            ),
          ),
        ),
        dataset.rowCount > rows.length ? el('p', { class: 'small' }, `The first ${rows.length} of ${dataset.rowCount}.`) : '',
      );
    } catch (error) {
      this.notify(`Could not read the rows: ${error.message}`, true);
    }
  }

  sourceChanged() {
    const source = this.$('dataset-source').value;
    this.$('dataset-upload-fields').hidden = source === 'executions';
    this.$('dataset-executions-fields').hidden = source !== 'executions';
  }

  /** A chosen file fills the rows (its format from its name). */
  async readFile(file) {
    if (!file) return;
    this.$('dataset-text').value = await file.text();
    this.$('dataset-source').value = /\.json$/i.test(file.name) ? 'json' : 'csv';
    if (!this.$('dataset-name').value.trim()) this.$('dataset-name').value = file.name.replace(/\.[^.]+$/, '');
    this.sourceChanged();
  }

  async create() {
    const errors = this.$('dataset-errors');
    errors.replaceChildren();
    const name = this.$('dataset-name').value.trim();
    const source = this.$('dataset-source').value;
    const text = this.$('dataset-text').value;
    let path = '/evaluations/datasets';
    let body;
    try {
      if (source === 'executions') {
        path = '/evaluations/datasets/from-executions';
        const version = this.$('dataset-version').value;
        body = {
          name,
          flowId: this.flow.id,
          limit: Number(this.$('dataset-limit').value) || 20,
          ...(version ? { version: Number(version) } : {}),
        };
      } else body = source === 'json' ? { name, rows: parseJsonRows(text) } : { name, csv: text };
    } catch (error) {
      errors.replaceChildren(el('li', { dataset: { testid: 'dataset-error' } }, `The JSON rows: ${error.message}`));
      return;
    }
    const button = this.$('dataset-save');
    button.disabled = true;
    try {
      const { dataset } = await this.api.post(path, body);
      this.notify(`Dataset “${dataset.name}” created: ${dataset.rowCount} rows.`);
      this.$('dataset-create').open = false;
      this.$('dataset-form-slot').replaceChildren();
      await this.load();
    } catch (error) {
      const details = Array.isArray(error.details) ? error.details : [];
      errors.replaceChildren(
        el('li', { dataset: { testid: 'dataset-error' } }, error.message),
        ...details.map((d) =>
          el('li', { dataset: { testid: 'dataset-error' } }, d.path ? el('code', {}, String(d.path)) : null, ` ${d.message ?? ''}`),
        ),
      );
    } finally {
      button.disabled = false;
    }
  }

  async remove(dataset) {
    const answer = await ask({
      title: `Delete the dataset “${dataset.name}”?`,
      message: 'The evaluations that ran it are deleted with it.',
      actions: [{ value: 'delete', label: 'Delete', danger: true }],
      testid: 'dataset-delete-dialog',
    });
    if (answer !== 'delete') return;
    try {
      await this.api.request('DELETE', `/evaluations/datasets/${dataset.id}`);
      this.notify(`Dataset “${dataset.name}” deleted.`);
      await this.load();
    } catch (error) {
      this.notify(`Could not delete the dataset: ${error.message}`, true);
    }
  }
}
