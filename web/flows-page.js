// The Flows page (`#/flows`, `#/flows/<id>`, `#/flows/<id>/executions/<executionId>`): saved
// chatflows and agentflows, edited as a form (flow-editor.js: each problem the API reports is
// shown next to its field; the JSON the API receives is shown read-only beside it), with the
// agentflow's graph drawn from the form (flow-graph.js: branches as labelled edges). A chatflow is
// chatted with (streamed) and embedded on other sites (flow-embeds.js); an agentflow runs from its
// input fields, its executions open on their own page (flow-execution.js), live while they run,
// and it has triggers (flow-triggers.js) and evaluations of its versions (flow-evaluations.js).
// The page builds its own DOM inside `[data-testid="flows-view"]`; it never uses innerHTML (flow
// names, prompts and model output are user and model text).
import { el } from './blocks.js';
import { FlowEditor } from './flow-editor.js';
import { FlowChat } from './flow-chat-panel.js';
import { FlowEmbeds } from './flow-embeds.js';
import { FlowEvaluations } from './flow-evaluations.js';
import { ExecutionView } from './flow-execution.js';
import { FlowGraph } from './flow-graph.js';
import { FlowRuns } from './flow-runs.js';
import { FlowTriggers } from './flow-triggers.js';
import { FlowVersions } from './flow-versions.js';
/** A new flow starts small: one empty step (or an empty system prompt); the examples are a click away. */
const BLANK = {
  chatflow: { systemPrompt: '', temperature: 0.2, historyWindow: 20 },
  agentflow: { nodes: [{ id: 'step1', prompt: '' }], output: 'step1' },
};
/** What "Start from an example" fills in. */
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

export class FlowsPage {
  constructor({ api, notify }) {
    this.api = api;
    this.notify = notify;
    this.flows = [];
    this.flow = null;
    this.models = null;
    this.root = document.querySelector('[data-testid="flows-view"]');
    this.editor = new FlowEditor({ onChange: (definition) => this.edited(definition) });
    this.embeds = new FlowEmbeds({ api, notify });
    this.chatPanel = new FlowChat({ api });
    this.execution = new ExecutionView({ api, notify });
    this.versions = new FlowVersions({ api, notify, onPublished: (flow) => this.select(flow) });
    this.graph = new FlowGraph();
    this.runs = new FlowRuns({ api, notify });
    this.triggers = new FlowTriggers({ api, notify });
    this.evaluations = new FlowEvaluations({ api, notify });
    this.build();
  }

  $(id) {
    return this.root.querySelector(`[data-testid="${id}"]`);
  }

  build() {
    const typeSelect = el(
      'select',
      { name: 'type', dataset: { testid: 'flow-type' }, onchange: () => this.useTemplate() },
      el('option', { value: 'agentflow' }, 'Agentflow: steps that run as a graph'),
      el('option', { value: 'chatflow' }, 'Chatflow: a chat assistant'),
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
          { class: 'flows-main', dataset: { testid: 'flows-main' } },
          this.execution.root,
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
              el(
                'div',
                { class: 'field', dataset: { path: 'name' } },
                el('label', {}, 'Name ', el('input', { name: 'name', required: true, maxlength: '200', dataset: { testid: 'flow-name' } })),
                el('p', { class: 'field-error', hidden: true, dataset: { testid: 'field-error' } }),
              ),
            ),
            el(
              'p',
              { class: 'row' },
              el(
                'button',
                { type: 'button', class: 'secondary', dataset: { testid: 'flow-use-example' }, onclick: () => this.useExample() },
                'Start from an example',
              ),
            ),
            this.editor.root,
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
            el(
              'details',
              { class: 'flow-json' },
              el('summary', {}, 'JSON (read-only): what the API receives'),
              el('pre', { class: 'flow-output', dataset: { testid: 'flow-json' } }),
            ),
          ),
          el(
            'section',
            { class: 'card', hidden: true, dataset: { testid: 'flow-structure' }, 'aria-labelledby': 'flow-structure-h' },
            el('h2', { id: 'flow-structure-h' }, 'Graph'),
            el(
              'p',
              { class: 'small' },
              'Each node runs once the nodes it runs after have finished; nodes side by side run in parallel. ' +
                'A condition or router leads on along the branch it takes (a dashed edge, labelled); the nodes of the branches it does not take are skipped.',
            ),
            this.graph.root,
          ),
          this.versions.root,
          this.chatPanel.root,
          this.embeds.root,
          this.runs.runRoot,
          this.runs.listRoot,
          this.triggers.root,
          this.evaluations.root,
        ),
      ),
    );
  }

  /** Stops whatever streams (leaving the page). */
  reset() {
    this.chatPanel.stop();
    this.evaluations.stop();
    this.execution.close();
    this.showingExecution(false);
  }

  /**
   * An execution is a page of its own: while one is open, the flow's form and panels step aside
   * (its back link returns to them), so the page does not stack the execution over the whole form.
   */
  showingExecution(open) {
    this.$('flows-main').classList.toggle('execution-open', open);
  }

  /** The models the form offers, read once per page life. */
  async loadModels() {
    if (this.models) return;
    try {
      this.models = (await this.api.get('/models')).models;
    } catch (error) {
      this.models = [];
      this.notify(`Could not list the models: ${error.message}`, true);
    }
    this.editor.setModels(this.models);
  }

  async show(flowId, executionId) {
    await Promise.all([this.loadList(), this.loadModels()]);
    if (!flowId) {
      this.execution.close();
      return this.select(null);
    }
    if (this.flow?.id !== flowId) {
      try {
        const { flow } = await this.api.get(`/flows/${flowId}`);
        this.select(flow);
      } catch (error) {
        this.notify(`Could not open the flow: ${error.message}`, true);
        location.hash = '#/flows';
        return;
      }
    }
    this.showingExecution(Boolean(executionId));
    if (executionId) {
      if (this.execution.execution?.id !== executionId || this.execution.root.hidden)
        void this.execution.open(this.flow, executionId, { onEnd: () => void this.runs.load(false) });
    } else this.execution.close();
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
      this.editor.setFlows(flows, this.flow?.id);
      this.graph.setFlows(flows);
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

  /** Shows a flow (or the empty form for a new one). */
  select(flow) {
    this.reset();
    this.flow = flow;
    this.renderList();
    const type = flow?.type ?? this.$('flow-type').value ?? 'agentflow';
    this.$('flow-form-title').textContent = flow ? `Edit “${flow.name}”` : 'New flow';
    this.$('flow-type').value = type;
    this.$('flow-type').disabled = Boolean(flow);
    this.$('flow-name').value = flow?.name ?? '';
    this.$('flow-delete').hidden = !flow;
    this.$('flow-save').textContent = flow ? 'Save changes' : 'Create flow';
    this.$('flow-use-example').parentElement.hidden = Boolean(flow);
    this.editor.setFlows(this.flows, flow?.id);
    this.graph.setFlows(this.flows);
    this.editor.load(type, flow?.definition ?? BLANK[type]);
    this.edited(this.editor.value().definition);
    this.showErrors([]);
    this.chatPanel.show(flow);
    void this.embeds.show(flow);
    void this.versions.show(flow);
    void this.triggers.show(flow);
    void this.evaluations.show(flow);
    this.runs.show(flow);
  }

  /** A new flow of another type: that type's blank form. */
  useTemplate() {
    if (this.flow) return;
    const type = this.$('flow-type').value;
    this.editor.load(type, BLANK[type]);
    this.edited(this.editor.value().definition);
    this.showErrors([]);
  }

  /** Fills a new flow's form with the example of its type. */
  useExample() {
    if (this.flow) return;
    const type = this.$('flow-type').value;
    this.editor.load(type, TEMPLATES[type]);
    this.edited(this.editor.value().definition);
    this.showErrors([]);
  }

  /** The form changed: the JSON view and the graph follow. */
  edited(definition) {
    this.$('flow-json').textContent = JSON.stringify(definition, null, 2);
    const agentflow = this.editor.type === 'agentflow';
    this.$('flow-structure').hidden = !agentflow;
    if (agentflow) this.graph.render(definition);
  }

  /** Puts each problem next to its field; the rest (and a summary) go in the list under the form. */
  showErrors(problems) {
    const nameField = this.root.querySelector('.flow-fields [data-path="name"]');
    const nameProblems = problems.filter((p) => p.path === 'name');
    const nameError = nameField.querySelector('.field-error');
    nameError.hidden = !nameProblems.length;
    nameError.textContent = nameProblems.map((p) => p.message).join(' ');
    this.$('flow-name').toggleAttribute('aria-invalid', nameProblems.length > 0);
    const unplaced = this.editor.showProblems(problems.filter((p) => p.path !== 'name'));
    const placed = problems.length - unplaced.length;
    const nodes = this.editor.problemNodes ?? [];
    this.graph.markProblems(nodes);
    const where = nodes.length ? ` (${nodes.length === 1 ? 'node' : 'nodes'} ${nodes.map((id) => `“${id}”`).join(', ')})` : '';
    this.$('flow-errors').replaceChildren(
      ...(placed ? [el('li', {}, `${placed === 1 ? 'One problem is' : `${placed} problems are`} marked next to the fields${where}.`)] : []),
      ...unplaced.map(({ path, message }) =>
        el('li', { dataset: { testid: 'flow-error', path: path ?? '' } }, path ? el('code', {}, path) : null, ` ${message}`),
      ),
    );
  }

  async save() {
    const name = this.$('flow-name').value.trim();
    const { definition, problems } = this.editor.value();
    if (problems.length) return this.showErrors(problems);
    const button = this.$('flow-save');
    button.disabled = true;
    try {
      const { flow } = this.flow
        ? await this.api.request('PATCH', `/flows/${this.flow.id}`, { name, definition })
        : await this.api.post('/flows', { type: this.$('flow-type').value, name, definition });
      const message = this.flow ? 'Flow saved.' : 'Flow created.';
      // The form is drawn again from the flow as saved before the notice says so: a field filled
      // after the notice is never drawn over by a reload still on its way.
      this.select(flow);
      this.notify(message);
      void this.loadList();
      if (location.hash !== `#/flows/${flow.id}`) location.hash = `#/flows/${flow.id}`;
    } catch (error) {
      // Paths are the body's (`definition.nodes.1.id`); the form's fields are named from the definition.
      const details = Array.isArray(error.details) ? error.details : [];
      this.showErrors(
        details.length
          ? details.map((d) => ({ path: String(d.path ?? '').replace(/^definition\.?/, ''), message: d.message }))
          : [{ path: '', message: error.message }],
      );
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
}
