// The Flows page (`#/flows`, `#/flows/<id>`): saved chatflows and agentflows. Create
// and edit a flow in a JSON editor (a 400's problems listed under it with their path; a click
// selects the text at that path), chat with a chatflow (streamed), run an agentflow and watch its
// nodes light up as the execution's events arrive, and browse past executions.
// The page builds its own DOM inside `[data-testid="flows-view"]`; it never uses innerHTML (flow
// names, prompts and model output are user and model text).
import { el } from './blocks.js';
import { jsonPaths, locate } from './json-paths.js';

const TEMPLATES = {
  chatflow: { systemPrompt: 'You are a concise, friendly support assistant for Switchboard.', temperature: 0.2, historyWindow: 20 },
  agentflow: {
    nodes: [
      { id: 'facts', prompt: 'List three facts about {{input.topic}}.' },
      { id: 'audience', prompt: 'Who would want to read about {{input.topic}}?' },
      {
        id: 'outline',
        prompt: 'Outline a short article for {{nodes.audience.output}} using {{nodes.facts.output}}.',
        dependsOn: ['facts', 'audience'],
      },
      { id: 'title', prompt: 'Write a title for this outline: {{nodes.outline.output}}', dependsOn: ['outline'] },
    ],
    output: 'title',
  },
};

const PAGE_SIZE = 20;
const pretty = (value) => (typeof value === 'string' ? value : JSON.stringify(value, null, 2));
const when = (iso) => (iso ? new Date(iso).toLocaleString() : '');
const tokens = (usage) =>
  usage
    ? `${usage.inputTokens ?? 0} in / ${usage.outputTokens ?? 0} out${usage.costUsd ? ` · $${Number(usage.costUsd).toFixed(6)}` : ''}`
    : '';

/** The `{{input.key}}` names a definition's prompts use, in order of first use. */
function inputKeys(definition) {
  const keys = new Set();
  for (const node of definition?.nodes ?? [])
    for (const match of String(node.prompt ?? '').matchAll(/\{\{\s*input\.([A-Za-z0-9_-]+)\s*\}\}/g)) keys.add(match[1]);
  return [...keys];
}

/** Nodes grouped in columns by depth (a node sits one column right of its deepest dependency). */
function layers(nodes) {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const depth = new Map();
  const depthOf = (id, seen = new Set()) => {
    if (depth.has(id)) return depth.get(id);
    if (seen.has(id) || !byId.has(id)) return 0;
    seen.add(id);
    const d = Math.max(-1, ...(byId.get(id).dependsOn ?? []).map((dep) => depthOf(dep, seen))) + 1;
    depth.set(id, d);
    return d;
  };
  const columns = [];
  for (const node of nodes) (columns[depthOf(node.id)] ??= []).push(node);
  return columns.filter(Boolean);
}

export class FlowsPage {
  constructor({ api, notify }) {
    this.api = api;
    this.notify = notify;
    this.flows = [];
    this.flow = null;
    this.sessionId = null;
    this.running = null;
    this.root = document.querySelector('[data-testid="flows-view"]');
    this.build();
  }

  $(id) {
    return this.root.querySelector(`[data-testid="${id}"]`);
  }

  build() {
    const typeSelect = el(
      'select',
      { name: 'type', dataset: { testid: 'flow-type' }, onchange: () => this.useTemplate() },
      el('option', { value: 'agentflow' }, 'agentflow'),
      el('option', { value: 'chatflow' }, 'chatflow'),
    );
    this.root.replaceChildren(
      el('h1', { id: 'flows-h' }, 'Flows'),
      el(
        'div',
        { class: 'flows-layout' },
        el(
          'aside',
          { class: 'card flows-side', 'aria-label': 'Your flows' },
          el('h2', {}, 'Your flows'),
          el('ul', { class: 'flow-list', dataset: { testid: 'flow-list' } }),
          el('a', { href: '#/flows', class: 'button-link', dataset: { testid: 'flow-new' } }, 'New flow'),
        ),
        el(
          'div',
          { class: 'flows-main' },
          el(
            'form',
            {
              class: 'card',
              dataset: { testid: 'flow-form' },
              novalidate: true,
              onsubmit: (event) => (event.preventDefault(), void this.save()),
            },
            el('h2', { dataset: { testid: 'flow-form-title' } }, 'New flow'),
            el(
              'div',
              { class: 'flow-fields' },
              el('label', {}, 'Type ', typeSelect),
              el('label', {}, 'Name ', el('input', { name: 'name', required: true, maxlength: '200', dataset: { testid: 'flow-name' } })),
            ),
            el(
              'label',
              {},
              'Definition (JSON) ',
              el('textarea', {
                name: 'definition',
                rows: '16',
                spellcheck: 'false',
                class: 'code',
                dataset: { testid: 'flow-definition' },
                'aria-describedby': 'flow-errors',
              }),
            ),
            el('ul', { id: 'flow-errors', class: 'flow-errors', role: 'alert', dataset: { testid: 'flow-errors' } }),
            el(
              'div',
              { class: 'row' },
              el('button', { type: 'submit', dataset: { testid: 'flow-save' } }, 'Save'),
              el(
                'button',
                { type: 'button', class: 'danger', hidden: true, dataset: { testid: 'flow-delete' }, onclick: () => void this.remove() },
                'Delete',
              ),
            ),
          ),
          this.buildChat(),
          this.buildRun(),
          el(
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
                onclick: () => void this.loadExecutions(true),
              },
              'Older executions',
            ),
          ),
        ),
      ),
    );
  }

  buildChat() {
    return el(
      'section',
      { class: 'card', hidden: true, dataset: { testid: 'flow-chat' }, 'aria-labelledby': 'flow-chat-h' },
      el('h2', { id: 'flow-chat-h' }, 'Chat'),
      el('ol', { class: 'flow-messages', 'aria-live': 'polite', dataset: { testid: 'flow-messages' } }),
      el(
        'form',
        { class: 'inline', dataset: { testid: 'flow-chat-form' }, onsubmit: (event) => (event.preventDefault(), void this.chat()) },
        el(
          'label',
          {},
          'Message ',
          el('input', { name: 'message', required: true, maxlength: '8000', autocomplete: 'off', dataset: { testid: 'flow-chat-input' } }),
        ),
        el('button', { type: 'submit', dataset: { testid: 'flow-chat-send' } }, 'Send'),
        el(
          'button',
          { type: 'button', class: 'secondary', dataset: { testid: 'flow-chat-new' }, onclick: () => this.newChat() },
          'New chat',
        ),
      ),
    );
  }

  buildRun() {
    return el(
      'section',
      { class: 'card', hidden: true, dataset: { testid: 'flow-run' }, 'aria-labelledby': 'flow-run-h' },
      el('h2', { id: 'flow-run-h' }, 'Run'),
      el(
        'label',
        {},
        'Input (JSON) ',
        el('textarea', { rows: '3', spellcheck: 'false', class: 'code', dataset: { testid: 'flow-input' } }),
      ),
      el(
        'div',
        { class: 'row' },
        el('button', { type: 'button', dataset: { testid: 'flow-run-start' }, onclick: () => void this.run() }, 'Run'),
        el(
          'button',
          { type: 'button', class: 'danger', hidden: true, dataset: { testid: 'flow-run-cancel' }, onclick: () => void this.cancel() },
          'Cancel',
        ),
      ),
      el('p', { class: 'state', role: 'status', dataset: { testid: 'flow-run-status' } }),
      el('ul', { class: 'flow-errors', role: 'alert', dataset: { testid: 'flow-run-errors' } }),
      el('div', { class: 'flow-graph', dataset: { testid: 'flow-graph' } }),
      el('pre', { class: 'flow-output', hidden: true, dataset: { testid: 'flow-output' } }),
    );
  }

  /** Stops whatever streams (leaving the page). */
  reset() {
    this.running?.abort();
    this.running = null;
  }

  async show(flowId) {
    await this.loadList();
    if (!flowId) return this.select(null);
    if (this.flow?.id === flowId) return;
    try {
      const { flow } = await this.api.get(`/flows/${flowId}`);
      this.select(flow);
    } catch (error) {
      this.notify(`Could not open the flow: ${error.message}`, true);
      location.hash = '#/flows';
    }
  }

  async loadList() {
    try {
      const flows = [];
      let cursor;
      do {
        const page = await this.api.get(`/flows?limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
        flows.push(...page.flows);
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
      this.flows = flows;
    } catch (error) {
      this.notify(`Could not load flows: ${error.message}`, true);
    }
    this.renderList();
  }

  renderList() {
    const list = this.$('flow-list');
    list.replaceChildren(
      ...this.flows.map((flow) =>
        el(
          'li',
          { dataset: { testid: 'flow-list-item', flowId: flow.id }, class: flow.id === this.flow?.id ? 'current' : undefined },
          el('a', { href: `#/flows/${flow.id}`, 'aria-current': flow.id === this.flow?.id ? 'page' : undefined }, flow.name),
          el('span', { class: 'badge' }, flow.type),
        ),
      ),
    );
    if (!this.flows.length) list.append(el('li', { class: 'small' }, 'No flows yet.'));
  }

  /** Shows a flow (or the empty editor for a new one). */
  select(flow) {
    this.reset();
    this.flow = flow;
    this.sessionId = null;
    this.renderList();
    this.$('flow-form-title').textContent = flow ? `Edit “${flow.name}”` : 'New flow';
    this.$('flow-type').value = flow?.type ?? 'agentflow';
    this.$('flow-type').disabled = Boolean(flow);
    this.$('flow-name').value = flow?.name ?? '';
    this.$('flow-delete').hidden = !flow;
    this.$('flow-save').textContent = flow ? 'Save changes' : 'Create flow';
    this.$('flow-definition').value = pretty(flow?.definition ?? TEMPLATES[this.$('flow-type').value]);
    this.showErrors([]);
    this.$('flow-chat').hidden = flow?.type !== 'chatflow';
    this.$('flow-run').hidden = flow?.type !== 'agentflow';
    this.$('flow-executions').hidden = flow?.type !== 'agentflow';
    this.$('flow-messages').replaceChildren();
    this.$('flow-run-status').textContent = '';
    this.$('flow-run-errors').replaceChildren();
    this.$('flow-output').hidden = true;
    if (flow?.type === 'agentflow') {
      this.$('flow-input').value = pretty(Object.fromEntries(inputKeys(flow.definition).map((key) => [key, ''])));
      this.renderGraph(flow.definition, {});
      void this.loadExecutions(false);
    }
  }

  useTemplate() {
    if (!this.flow) this.$('flow-definition').value = pretty(TEMPLATES[this.$('flow-type').value]);
  }

  /** Lists problems under the editor; each names its path, and a click selects that text. */
  showErrors(problems) {
    const textarea = this.$('flow-definition');
    textarea.setAttribute('aria-invalid', problems.length ? 'true' : 'false');
    this.$('flow-errors').replaceChildren(
      ...problems.map(({ path, message }) =>
        el(
          'li',
          { dataset: { testid: 'flow-error', path: path ?? '' } },
          path
            ? el('button', { type: 'button', class: 'link path', title: 'Show in the editor', onclick: () => this.point(path) }, path)
            : null,
          ` ${message}`,
        ),
      ),
    );
  }

  point(path) {
    const textarea = this.$('flow-definition');
    const span = locate(jsonPaths(textarea.value), path);
    textarea.focus();
    if (span) textarea.setSelectionRange(span.start, span.end);
  }

  async save() {
    const name = this.$('flow-name').value.trim();
    let definition;
    try {
      definition = JSON.parse(this.$('flow-definition').value);
    } catch (error) {
      return this.showErrors([{ path: '', message: `Not valid JSON: ${error.message}` }]);
    }
    const button = this.$('flow-save');
    button.disabled = true;
    try {
      const { flow } = this.flow
        ? await this.api.request('PATCH', `/flows/${this.flow.id}`, { name, definition })
        : await this.api.post('/flows', { type: this.$('flow-type').value, name, definition });
      this.showErrors([]);
      this.notify(this.flow ? 'Flow saved.' : 'Flow created.');
      this.flow = null;
      if (location.hash === `#/flows/${flow.id}`) await this.show(flow.id);
      else location.hash = `#/flows/${flow.id}`;
    } catch (error) {
      // Paths are the body's (`definition.nodes.1.id`); the editor holds the definition.
      const details = Array.isArray(error.details) ? error.details : [];
      const problems = details.length
        ? details.map((d) => ({
            path: String(d.path ?? '').replace(/^definition\.?/, ''),
            message: d.message,
            field: String(d.path ?? ''),
          }))
        : [{ path: '', message: error.message }];
      this.showErrors(problems.map((p) => (p.field === 'name' ? { path: '', message: `Name: ${p.message}` } : p)));
    } finally {
      button.disabled = false;
    }
  }

  async remove() {
    if (!this.flow || !confirm(`Delete the flow “${this.flow.name}”?`)) return;
    try {
      await this.api.request('DELETE', `/flows/${this.flow.id}`);
      this.notify('Flow deleted.');
      this.flow = null;
      location.hash = '#/flows';
    } catch (error) {
      this.notify(`Could not delete the flow: ${error.message}`, true);
    }
  }

  // ---- chatflow ----

  newChat() {
    this.sessionId = null;
    this.$('flow-messages').replaceChildren();
  }

  message(role, text) {
    const item = el(
      'li',
      { class: `msg msg-${role}`, dataset: { testid: `flow-message-${role}` } },
      el('span', { class: 'tag' }, role),
      el('span', { class: 'text' }, text),
    );
    this.$('flow-messages').append(item);
    return item.querySelector('.text');
  }

  async chat() {
    const input = this.$('flow-chat-input');
    const message = input.value.trim();
    if (!message || !this.flow) return;
    input.value = '';
    this.message('user', message);
    const answer = this.message('assistant', '');
    answer.parentElement.classList.add('streaming');
    const send = this.$('flow-chat-send');
    send.disabled = true;
    this.running?.abort();
    const controller = (this.running = new AbortController());
    try {
      await this.api.stream(
        `/flows/${this.flow.id}/chat/stream`,
        { message, ...(this.sessionId ? { sessionId: this.sessionId } : {}) },
        ({ event, data }) => {
          if (data?.sessionId) this.sessionId = data.sessionId;
          if (event === 'text_chunk') answer.textContent += data.text;
          else if (event === 'final') {
            answer.textContent = data.response;
            answer.parentElement.append(el('span', { class: 'small usage' }, tokens(data.usage)));
          } else if (event === 'error') answer.parentElement.append(el('span', { class: 'error' }, ` ${data.message ?? data.code}`));
        },
        controller.signal,
      );
    } catch (error) {
      if (error.name !== 'AbortError') answer.parentElement.append(el('span', { class: 'error' }, ` ${error.message}`));
    } finally {
      answer.parentElement.classList.remove('streaming');
      send.disabled = false;
      if (this.running === controller) this.running = null;
    }
  }

  // ---- agentflow ----

  /** Draws the DAG, one box per node, coloured by `states[id].status` (pending when absent). */
  renderGraph(definition, states) {
    const graph = this.$('flow-graph');
    graph.replaceChildren(
      ...layers(definition?.nodes ?? []).map((column) =>
        el(
          'div',
          { class: 'flow-column' },
          column.map((node) =>
            el(
              'div',
              {
                class: 'flow-node',
                dataset: { testid: 'flow-node', nodeId: node.id, status: states[node.id]?.status ?? 'pending' },
                tabindex: '0',
                'aria-label': `${node.id}: ${states[node.id]?.status ?? 'pending'}`,
              },
              el('strong', {}, node.id, definition.output === node.id ? el('span', { class: 'badge' }, 'output') : null),
              node.dependsOn?.length ? el('span', { class: 'small' }, `after ${node.dependsOn.join(', ')}`) : null,
              el('span', { class: 'node-status', dataset: { testid: 'flow-node-status' } }, states[node.id]?.status ?? 'pending'),
              el('span', { class: 'small node-usage' }, tokens(states[node.id]?.usage)),
              el(
                'pre',
                { class: 'node-output', hidden: states[node.id]?.output == null && !states[node.id]?.error },
                states[node.id]?.error
                  ? pretty(states[node.id].error)
                  : states[node.id]?.output == null
                    ? ''
                    : pretty(states[node.id].output),
              ),
            ),
          ),
        ),
      ),
    );
  }

  /** Updates one node's box in place (the live events). */
  setNode(id, state) {
    const box = [...this.root.querySelectorAll('[data-testid="flow-node"]')].find((node) => node.dataset.nodeId === id);
    if (!box) return;
    box.dataset.status = state.status;
    box.setAttribute('aria-label', `${id}: ${state.status}`);
    box.querySelector('.node-status').textContent = state.status + (state.attempts > 1 ? ` (attempt ${state.attempts})` : '');
    if (state.usage) box.querySelector('.node-usage').textContent = tokens(state.usage);
    const output = box.querySelector('.node-output');
    if (state.output != null || state.error) {
      output.hidden = false;
      output.textContent = state.error ? pretty(state.error) : pretty(state.output);
    }
  }

  showResult(execution) {
    const out = this.$('flow-output');
    out.hidden = execution.output == null && !execution.error;
    out.textContent = execution.error ? `Error: ${pretty(execution.error)}` : pretty(execution.output);
  }

  async run() {
    if (!this.flow) return;
    const errors = this.$('flow-run-errors');
    errors.replaceChildren();
    let input;
    try {
      input = JSON.parse(this.$('flow-input').value || '{}');
    } catch (error) {
      errors.append(el('li', { dataset: { testid: 'flow-run-error' } }, `Input is not valid JSON: ${error.message}`));
      return;
    }
    const flow = this.flow;
    this.renderGraph(flow.definition, {});
    this.$('flow-output').hidden = true;
    const status = this.$('flow-run-status');
    status.textContent = 'Starting…';
    this.executionId = null;
    const start = this.$('flow-run-start');
    const cancel = this.$('flow-run-cancel');
    start.disabled = true;
    cancel.hidden = false;
    this.running?.abort();
    const controller = (this.running = new AbortController());
    try {
      await this.api.stream(
        `/flows/${flow.id}/execute/stream`,
        { input },
        ({ event, data }) => {
          switch (event) {
            case 'execution_started':
              this.executionId = data.executionId;
              status.textContent = `Running (execution ${data.executionId})`;
              break;
            case 'node_started':
              this.setNode(data.nodeId, { status: 'running', attempts: data.attempt });
              break;
            case 'node_completed':
              this.setNode(data.nodeId, { status: 'completed', output: data.output, usage: data.usage });
              break;
            case 'node_failed':
              this.setNode(data.nodeId, { status: 'failed', error: data.error });
              break;
            case 'execution_completed':
              status.textContent = `Completed · ${tokens(data.usage)}`;
              this.showResult({ output: data.output });
              break;
            case 'execution_failed':
              status.textContent = 'Failed';
              this.showResult({ error: data.error });
              break;
            case 'cancelled':
              status.textContent = 'Cancelled';
              break;
            default:
              break;
          }
          status.dataset.state = event;
        },
        controller.signal,
      );
    } catch (error) {
      if (error.name === 'AbortError') return;
      status.textContent = '';
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
      cancel.hidden = true;
      if (this.running === controller) this.running = null;
      if (this.flow === flow) {
        void this.loadExecutions(false);
        // The stored record has what the events do not say (nodes cancelled or skipped, attempts).
        if (this.executionId && !controller.signal.aborted) await this.openExecution(this.executionId);
      }
    }
  }

  async cancel() {
    if (!this.flow || !this.executionId) return;
    try {
      await this.api.post(`/flows/${this.flow.id}/executions/${this.executionId}/cancel`);
    } catch (error) {
      this.notify(`Could not cancel: ${error.message}`, true);
    }
  }

  async loadExecutions(more) {
    const flow = this.flow;
    if (!flow) return;
    const cursor = more ? this.executionsCursor : null;
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
            'button',
            {
              type: 'button',
              class: 'execution',
              dataset: { testid: 'flow-execution', executionId: execution.id, status: execution.status },
              onclick: () => void this.openExecution(execution.id),
            },
            el('span', { class: `badge status-${execution.status}` }, execution.status),
            ` ${when(execution.createdAt)} `,
            el('span', { class: 'small' }, tokens(execution.usage)),
          ),
        ),
      );
      if (more) list.append(...items);
      else list.replaceChildren(...items);
      if (!list.children.length) list.append(el('li', { class: 'small' }, 'No executions yet.'));
      this.executionsCursor = page.nextCursor ?? null;
      this.$('flow-executions-more').hidden = !this.executionsCursor;
    } catch (error) {
      this.notify(`Could not load executions: ${error.message}`, true);
    }
  }

  async openExecution(executionId) {
    const flow = this.flow;
    try {
      const { execution } = await this.api.get(`/flows/${flow.id}/executions/${executionId}`);
      if (this.flow !== flow) return;
      const states = Object.fromEntries((execution.nodes ?? []).map((node) => [node.id, node]));
      this.renderGraph(flow.definition, states);
      this.$('flow-input').value = pretty(execution.input ?? {});
      const status = this.$('flow-run-status');
      status.textContent = `Execution ${execution.id}: ${execution.status} · ${tokens(execution.usage)}`;
      status.dataset.state = execution.status;
      this.showResult(execution);
    } catch (error) {
      this.notify(`Could not open the execution: ${error.message}`, true);
    }
  }
}
