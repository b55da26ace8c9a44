// An agentflow's evaluations (flows-page.js): a dataset (flow-datasets.js) run through one or
// several saved versions, every answer scored (flow-scorers.js), and the versions compared on
// score, cost and latency in a table, the best of each marked. A running evaluation is read again
// every few seconds while it is open (the API pushes no events for it), and Refresh reads it now;
// each row's answers are listed per version with a link to their execution.
import { el } from './blocks.js';
import { FlowDatasets } from './flow-datasets.js';
import { renderComparison } from './flow-evaluation-view.js';
import { ScorerList } from './flow-scorers.js';

/** How often an open, running evaluation is read again. */
const REFRESH_MS = 2_000;
const when = (iso) => (iso ? new Date(iso).toLocaleString() : '');

export class FlowEvaluations {
  constructor({ api, notify }) {
    this.api = api;
    this.notify = notify;
    this.flow = null;
    this.versions = [];
    this.datasetList = [];
    this.models = [];
    this.open = null;
    this.timer = null;
    this.scorers = null;
    this.datasets = new FlowDatasets({ api, notify, onChange: (datasets) => this.datasetsChanged(datasets) });
    // The form is built when first opened (and again for another flow): closed, none of its fields exist.
    this.root = el(
      'section',
      { class: 'card evaluations', hidden: true, dataset: { testid: 'flow-evaluations' }, 'aria-labelledby': 'flow-evaluations-h' },
      el('h2', { id: 'flow-evaluations-h' }, 'Evaluations'),
      el(
        'p',
        { class: 'small' },
        'Run a dataset through saved versions, score every answer, and compare the versions on score, cost and latency before you publish one. ' +
          'Each row of each version is an execution of its own, run behind your other executions.',
      ),
      this.datasets.root,
      el(
        'details',
        { class: 'create-box', dataset: { testid: 'eval-new' }, ontoggle: (e) => e.target.open && this.openForm() },
        el('summary', {}, 'New evaluation'),
        el('div', { dataset: { testid: 'eval-form-slot' } }),
      ),
      el('h3', {}, 'Runs'),
      el('ul', { class: 'eval-list', dataset: { testid: 'eval-list' } }),
      el('div', { class: 'eval-view', hidden: true, dataset: { testid: 'eval-view' }, 'aria-live': 'polite' }),
    );
  }

  $(id) {
    return this.root.querySelector(`[data-testid="${id}"]`);
  }

  /** The form of a new evaluation: a dataset, the versions (the two newest ticked), scorers, concurrency. */
  form() {
    this.scorers = new ScorerList();
    this.scorers.setModels(this.models);
    return el(
      'form',
      { class: 'eval-start', dataset: { testid: 'eval-start-form' }, onsubmit: (e) => (e.preventDefault(), void this.start()) },
      el('label', {}, 'Dataset ', el('select', { dataset: { testid: 'eval-dataset-select' } })),
      el(
        'fieldset',
        { class: 'checks', dataset: { testid: 'eval-versions' } },
        el('legend', {}, 'Versions to compare'),
        this.versions.map((v, index) =>
          el(
            'label',
            { class: 'check' },
            // By default the two newest: a draft against what runs now.
            el('input', { type: 'checkbox', value: String(v.version), checked: index < 2, dataset: { testid: 'eval-version' } }),
            ` v${v.version}${v.published ? ' (published)' : ''}`,
          ),
        ),
      ),
      this.scorers.root,
      el(
        'label',
        {},
        'Executions at once (optional) ',
        el('input', { type: 'number', min: '1', step: '1', dataset: { testid: 'eval-concurrency' } }),
      ),
      el('button', { type: 'submit', dataset: { testid: 'eval-start' } }, 'Start evaluation'),
      el('ul', { class: 'flow-errors', role: 'alert', dataset: { testid: 'eval-errors' } }),
    );
  }

  openForm() {
    const slot = this.$('eval-form-slot');
    if (slot.firstChild || !this.flow) return;
    slot.replaceChildren(this.form());
    this.datasetsChanged(this.datasetList);
  }

  /** Stops reading an open evaluation again (leaving the flow or the page). */
  stop() {
    clearTimeout(this.timer);
    this.timer = null;
    this.open = null;
  }

  async show(flow) {
    this.stop();
    this.flow = flow;
    this.root.hidden = flow?.type !== 'agentflow';
    this.$('eval-view').hidden = true;
    this.$('eval-new').open = false;
    this.$('eval-form-slot').replaceChildren();
    if (flow?.type !== 'agentflow') return;
    try {
      this.versions = (await this.api.get(`/flows/${flow.id}/versions?limit=200`)).versions;
    } catch (error) {
      this.versions = [];
      this.notify(`Could not list the versions: ${error.message}`, true);
    }
    if (this.flow !== flow) return;
    void this.loadModels();
    await Promise.all([this.datasets.show(flow, this.versions), this.load()]);
  }

  async loadModels() {
    try {
      this.models = (await this.api.get('/models')).models;
      this.scorers?.setModels(this.models);
    } catch {
      // The judge then offers the default model only.
    }
  }

  datasetsChanged(datasets) {
    this.datasetList = datasets;
    this.datasetNames = new Map(datasets.map((d) => [d.id, d.name]));
    const select = this.$('eval-dataset-select');
    if (select) {
      const chosen = select.value;
      select.replaceChildren(
        el('option', { value: '' }, datasets.length ? 'Choose a dataset' : 'Create a dataset first'),
        ...datasets.map((d) => el('option', { value: d.id }, `${d.name} (${d.rowCount} rows)`)),
      );
      select.value = datasets.some((d) => d.id === chosen) ? chosen : (datasets[0]?.id ?? '');
    }
    if (this.flow) void this.load();
  }

  /** This flow's evaluations, newest first. */
  async load() {
    const flow = this.flow;
    try {
      const { evaluations } = await this.api.get(`/evaluations?flowId=${flow.id}&limit=50`);
      if (this.flow !== flow) return;
      const list = this.$('eval-list');
      list.replaceChildren(
        ...evaluations.map((evaluation) =>
          el(
            'li',
            {},
            el(
              'button',
              {
                type: 'button',
                class: 'eval-open',
                dataset: { testid: 'eval-item', evaluationId: evaluation.id, status: evaluation.status },
                onclick: () => void this.openEvaluation(evaluation.id),
              },
              el('span', { class: `badge status-${evaluation.status}` }, evaluation.status),
              ` ${evaluation.versions.map((v) => `v${v}`).join(' vs ')} on “${this.datasetNames?.get(evaluation.datasetId) ?? 'a dataset'}” · ${when(evaluation.createdAt)}`,
            ),
          ),
        ),
      );
      if (!evaluations.length) list.append(el('li', { class: 'small' }, 'No evaluations of this flow yet.'));
    } catch (error) {
      this.notify(`Could not list the evaluations: ${error.message}`, true);
    }
  }

  async start() {
    const errors = this.$('eval-errors');
    errors.replaceChildren();
    for (const error of this.scorers.root.querySelectorAll('.field-error')) ((error.hidden = true), (error.textContent = ''));
    const versions = [...this.$('eval-versions').querySelectorAll('input:checked')].map((box) => Number(box.value));
    const { scorers, problems } = this.scorers.value();
    const concurrency = Number(this.$('eval-concurrency').value) || undefined;
    const body = {
      flowId: this.flow.id,
      datasetId: this.$('eval-dataset-select').value,
      versions,
      scorers,
      ...(concurrency ? { concurrency } : {}),
    };
    if (!body.datasetId) problems.push({ path: 'datasetId', message: 'Choose a dataset (or create one above).' });
    if (!versions.length) problems.push({ path: 'versions', message: 'Tick at least one version.' });
    if (problems.length) return this.showProblems(problems);
    const button = this.$('eval-start');
    button.disabled = true;
    try {
      const { evaluation } = await this.api.post('/evaluations', body);
      this.notify('Evaluation started.');
      await this.load();
      await this.openEvaluation(evaluation.id);
    } catch (error) {
      const details = Array.isArray(error.details) ? error.details : [];
      this.showProblems([{ path: '', message: error.message }, ...details.filter((d) => d.message)]);
    } finally {
      button.disabled = false;
    }
  }

  /** A scorer's problem next to its field; every problem in the list under the form. */
  showProblems(problems) {
    for (const problem of problems) {
      const field = String(problem.path ?? '').startsWith('scorers.')
        ? this.scorers.root.querySelector(`.field[data-path="${CSS.escape(problem.path)}"]`)
        : null;
      const error = field?.querySelector(':scope > .field-error');
      if (error) ((error.hidden = false), (error.textContent = problem.message));
    }
    this.$('eval-errors').replaceChildren(
      ...problems.map((p) => el('li', { dataset: { testid: 'eval-error' } }, p.path ? el('code', {}, p.path) : null, ` ${p.message}`)),
    );
  }

  /** Shows an evaluation's comparison and answers; read again while it runs. */
  async openEvaluation(id) {
    clearTimeout(this.timer);
    this.open = id;
    const flow = this.flow;
    try {
      const [comparison, detail] = await Promise.all([this.api.get(`/evaluations/${id}/comparison`), this.api.get(`/evaluations/${id}`)]);
      const rows = await this.datasetRows(comparison.evaluation.datasetId);
      if (this.open !== id || this.flow !== flow) return;
      const view = this.$('eval-view');
      renderComparison(view, comparison, detail.results, rows, {
        refresh: () => void this.openEvaluation(id),
        cancel: () => void this.cancel(id),
      });
      if (comparison.evaluation.status === 'running') this.timer = setTimeout(() => void this.openEvaluation(id), REFRESH_MS);
      else void this.load();
    } catch (error) {
      if (this.open === id) this.notify(`Could not read the evaluation: ${error.message}`, true);
    }
  }

  /** The dataset's first rows (their input and expected output), read once per dataset. */
  async datasetRows(datasetId) {
    if (this.rowsOf?.id === datasetId) return this.rowsOf.rows;
    const { rows } = await this.api.get(`/evaluations/datasets/${datasetId}?limit=200`);
    this.rowsOf = { id: datasetId, rows };
    return rows;
  }

  async cancel(id) {
    try {
      await this.api.post(`/evaluations/${id}/cancel`);
      await this.openEvaluation(id);
    } catch (error) {
      this.notify(error.status === 409 ? 'It had already ended.' : `Could not cancel: ${error.message}`, error.status !== 409);
    }
  }
}
