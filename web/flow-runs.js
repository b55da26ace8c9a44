// An agentflow's Run form and its executions (flows-page.js): one field per input key the
// definition reads (flow-inputs.js), Run starts an execution and opens its page, and the list of
// executions, newest first, each with its status, version, time and tokens, in pages.
import { el } from './blocks.js';
import { inputFields, inputKeys, readInputs } from './flow-inputs.js';

const PAGE_SIZE = 20;
const pretty = (value) => (typeof value === 'string' ? value : JSON.stringify(value, null, 2));
const when = (iso) => (iso ? new Date(iso).toLocaleString() : '');
const tokens = (usage) =>
  usage
    ? `${usage.inputTokens ?? 0} in / ${usage.outputTokens ?? 0} out${usage.costUsd ? ` · $${Number(usage.costUsd).toFixed(6)}` : ''}`
    : '';

export class FlowRuns {
  constructor({ api, notify }) {
    this.api = api;
    this.notify = notify;
    this.flow = null;
    this.cursor = null;
    this.runRoot = el(
      'section',
      { class: 'card', hidden: true, dataset: { testid: 'flow-run' }, 'aria-labelledby': 'flow-run-h' },
      el('h2', { id: 'flow-run-h' }, 'Run'),
      el(
        'form',
        { dataset: { testid: 'flow-run-form' }, onsubmit: (event) => (event.preventDefault(), void this.run()) },
        el('div', { class: 'run-inputs', dataset: { testid: 'flow-inputs' } }),
        el('button', { type: 'submit', dataset: { testid: 'flow-run-start' } }, 'Run'),
      ),
      el('ul', { class: 'flow-errors', role: 'alert', dataset: { testid: 'flow-run-errors' } }),
    );
    this.listRoot = el(
      'section',
      { class: 'card', hidden: true, dataset: { testid: 'flow-executions' }, 'aria-labelledby': 'flow-executions-h' },
      el('h2', { id: 'flow-executions-h' }, 'Executions'),
      el('ul', { class: 'execution-list', dataset: { testid: 'flow-execution-list' } }),
      el(
        'button',
        {
          type: 'button',
          class: 'secondary',
          hidden: true,
          dataset: { testid: 'flow-executions-more' },
          onclick: () => void this.load(true),
        },
        'Older executions',
      ),
    );
  }

  $(id) {
    return this.runRoot.querySelector(`[data-testid="${id}"]`) ?? this.listRoot.querySelector(`[data-testid="${id}"]`);
  }

  show(flow) {
    this.flow = flow;
    const agentflow = flow?.type === 'agentflow';
    this.runRoot.hidden = !agentflow;
    this.listRoot.hidden = !agentflow;
    this.$('flow-run-errors').replaceChildren();
    if (!agentflow) return;
    this.$('flow-inputs').replaceChildren(...inputFields(inputKeys(flow.definition), { testid: 'flow-input-field' }));
    void this.load(false);
  }

  /** Starts an execution and opens its page, where it is followed live. */
  async run() {
    const flow = this.flow;
    if (!flow) return;
    const errors = this.$('flow-run-errors');
    errors.replaceChildren();
    const input = readInputs(this.$('flow-inputs'), 'flow-input-field');
    const start = this.$('flow-run-start');
    start.disabled = true;
    try {
      const { executionId } = await this.api.post(`/flows/${flow.id}/execute`, { input });
      void this.load(false);
      location.hash = `#/flows/${flow.id}/executions/${executionId}`;
    } catch (error) {
      const details = Array.isArray(error.details)
        ? error.details
        : error.details?.missing
          ? [{ path: 'input', message: `missing ${error.details.missing.join(', ')}` }]
          : [];
      errors.replaceChildren(
        el('li', { dataset: { testid: 'flow-run-error' } }, error.message),
        ...details.map((d) =>
          el('li', { dataset: { testid: 'flow-run-error' } }, el('code', {}, String(d.path ?? '')), ` ${d.message ?? pretty(d)}`),
        ),
      );
    } finally {
      start.disabled = false;
    }
  }

  /** The newest executions (or, with `more`, the page after those shown). */
  async load(more) {
    const flow = this.flow;
    if (!flow) return;
    const cursor = more ? this.cursor : null;
    try {
      const page = await this.api.get(
        `/flows/${flow.id}/executions?limit=${PAGE_SIZE}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      );
      if (this.flow !== flow) return;
      const list = this.$('flow-execution-list');
      const items = page.executions.map((execution) =>
        el(
          'li',
          {},
          el(
            'a',
            {
              class: 'execution',
              href: `#/flows/${flow.id}/executions/${execution.id}`,
              dataset: { testid: 'flow-execution', executionId: execution.id, status: execution.status },
            },
            el('span', { class: `badge status-${execution.status}` }, execution.status),
            ` ${when(execution.createdAt)} `,
            el('span', { class: 'small' }, `v${execution.flowVersion} · ${tokens(execution.usage)}`),
          ),
        ),
      );
      if (more) list.append(...items);
      else list.replaceChildren(...items);
      if (!list.children.length) list.append(el('li', { class: 'small' }, 'No executions yet.'));
      this.cursor = page.nextCursor ?? null;
      this.$('flow-executions-more').hidden = !this.cursor;
    } catch (error) {
      this.notify(`Could not load executions: ${error.message}`, true);
    }
  }
}
