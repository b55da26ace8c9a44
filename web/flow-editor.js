// A flow's definition as a form (flows-page.js): a chatflow's prompt, model and settings; an
// agentflow's nodes (id, kind, the kind's fields — flow-node-kinds.js —, the nodes it runs after),
// its output node, device, HTTP tools and their allowed origins. The form edits a plain object;
// `value()` is the definition the API receives, and `showProblems()` puts each of the API's
// `{path, message}` problems next to the field at that path and marks the node it is in.
import { el } from './blocks.js';
import { httpToolFields, originFields } from './flow-editor-http.js';
import { convertNode, dropRefs, kindOf, NODE_KINDS, renameRefs, schemaField, unknownKindFields } from './flow-node-kinds.js';

const NEW_NODE_PROMPT = 'Write about {{input.topic}}.';
const modelKey = (model) => (model ? `${model.provider}:${model.model}` : '');
const clone = (value) => JSON.parse(JSON.stringify(value ?? {}));
/** A textarea showing `value` (its content is a property, not an attribute). */
const textarea = (props, value) => {
  const node = el('textarea', props);
  node.value = value ?? '';
  return node;
};
const NODE_PATH = /^nodes\.(\d+)(?:\.|$)/;

export class FlowEditor {
  /** `onChange(definition)` after every edit (the JSON view and the graph follow it). */
  constructor({ onChange }) {
    this.onChange = onChange;
    this.models = [];
    this.type = 'agentflow';
    this.def = {};
    /** Output schemas as typed (text), by node object: parsed by value(). */
    this.schemaTexts = new WeakMap();
    /** The owner's flows (a subflow node names one of them) and the id of the one edited (null: new). */
    this.flows = [];
    this.flowId = null;
    this.root = el('div', { class: 'flow-editor', dataset: { testid: 'flow-editor' } });
  }

  setFlows(flows, flowId) {
    this.flows = flows;
    this.flowId = flowId ?? null;
  }

  /** The `{provider, model}` pairs the model fields offer (GET /models). */
  setModels(models) {
    this.models = models;
  }

  load(type, definition) {
    this.type = type;
    this.def = clone(definition);
    if (type === 'agentflow') this.def.nodes ??= [];
    this.schemaTexts = new WeakMap();
    for (const node of this.def.nodes ?? []) if (node.outputSchema) this.schemaTexts.set(node, JSON.stringify(node.outputSchema, null, 2));
    this.render();
  }

  changed() {
    this.onChange(this.value().definition);
  }

  /** `{definition, problems}`: problems are what the form can tell before the API (an output schema that is not JSON). */
  value() {
    const d = this.def;
    if (this.type === 'chatflow') {
      const definition = { systemPrompt: d.systemPrompt ?? '' };
      if (d.model) definition.model = d.model;
      if (d.temperature !== undefined && d.temperature !== null) definition.temperature = d.temperature;
      if (d.historyWindow !== undefined && d.historyWindow !== null) definition.historyWindow = d.historyWindow;
      return { definition, problems: [] };
    }
    const problems = [];
    const nodes = (d.nodes ?? []).map((node, index) => {
      const kind = NODE_KINDS[kindOf(node)];
      // A kind this form does not edit is sent as it came.
      if (!kind) return clone(node);
      const out = { id: node.id ?? '', ...kind.value(node) };
      if (kind.problems) problems.push(...kind.problems(node, index));
      if (node.dependsOn?.length) out.dependsOn = node.dependsOn;
      const schema = kind.outputSchema ? this.schemaTexts.get(node)?.trim() : '';
      if (schema) {
        try {
          out.outputSchema = JSON.parse(schema);
        } catch (error) {
          problems.push({ path: `nodes.${index}.outputSchema`, message: `Not valid JSON: ${error.message}` });
        }
      }
      return out;
    });
    const definition = { nodes, output: d.output ?? '' };
    if (d.deviceId) definition.deviceId = d.deviceId;
    if (d.httpTools?.length) definition.httpTools = d.httpTools;
    if (d.allowedOrigins?.length) definition.allowedOrigins = d.allowedOrigins;
    return { definition, problems };
  }

  // ---- fields ----

  /** A labelled control with its place for a problem, found by `path`. */
  field(label, path, control, hint) {
    return el(
      'div',
      { class: 'field', dataset: { path } },
      el('label', {}, el('span', { class: 'field-label' }, label), control),
      hint ? el('span', { class: 'small hint' }, hint) : null,
      el('p', { class: 'field-error', hidden: true, dataset: { testid: 'field-error' } }),
    );
  }

  input(value, onInput, props = {}) {
    return el('input', { value: value ?? '', autocomplete: 'off', ...props, oninput: (e) => (onInput(e.target.value), this.changed()) });
  }

  /** A textarea showing `value`. */
  area(props, value) {
    return textarea(props, value);
  }

  /** A labelled checkbox; `onToggle(checked)`, then the form changed. */
  check(checked, onToggle, label, testid) {
    return el(
      'label',
      { class: 'check' },
      el('input', { type: 'checkbox', checked, dataset: { testid }, onchange: (e) => (onToggle(e.target.checked), this.changed()) }),
      ` ${label}`,
    );
  }

  modelSelect(current, onPick, testid) {
    const known = this.models.some((m) => modelKey(m) === modelKey(current));
    const options = [...this.models, ...(current && !known ? [current] : [])];
    const select = el(
      'select',
      {
        dataset: { testid },
        onchange: (e) => {
          const choice = options.find((m) => modelKey(m) === e.target.value);
          onPick(choice ? { provider: choice.provider, model: choice.model } : undefined);
          this.changed();
        },
      },
      el('option', { value: '' }, 'The deployment’s default model'),
      options.map((m) => el('option', { value: modelKey(m) }, `${m.provider} · ${m.model}`)),
    );
    select.value = modelKey(current);
    return select;
  }

  render() {
    this.root.replaceChildren(...(this.type === 'chatflow' ? this.chatflowFields() : this.agentflowFields()));
  }

  chatflowFields() {
    const d = this.def;
    const number = (value, set, props) =>
      el('input', {
        type: 'number',
        value: value ?? '',
        ...props,
        oninput: (e) => (set(e.target.value === '' ? undefined : Number(e.target.value)), this.changed()),
      });
    return [
      this.field(
        'System prompt',
        'systemPrompt',
        textarea(
          {
            rows: '5',
            maxlength: '8000',
            dataset: { testid: 'chatflow-system-prompt' },
            oninput: (e) => ((d.systemPrompt = e.target.value), this.changed()),
          },
          d.systemPrompt ?? '',
        ),
        'What the assistant is told before every conversation.',
      ),
      this.field(
        'Model',
        'model',
        this.modelSelect(d.model, (m) => (d.model = m), 'chatflow-model'),
      ),
      el(
        'div',
        { class: 'field-row' },
        this.field(
          'Temperature',
          'temperature',
          number(d.temperature, (v) => (d.temperature = v), { min: '0', max: '2', step: '0.1' }),
        ),
        this.field(
          'History window (messages)',
          'historyWindow',
          number(d.historyWindow, (v) => (d.historyWindow = v), { min: '1', max: '100', step: '1' }),
        ),
      ),
    ];
  }

  agentflowFields() {
    const d = this.def;
    const ids = d.nodes.map((node) => node.id);
    const output = el(
      'select',
      { dataset: { testid: 'flow-output-node' }, onchange: (e) => ((d.output = e.target.value), this.changed()) },
      el('option', { value: '' }, 'Choose a node'),
      ids.filter(Boolean).map((id) => el('option', { value: id }, id)),
    );
    output.value = ids.includes(d.output) ? d.output : '';
    return [
      el('h3', {}, 'Nodes'),
      el(
        'ol',
        { class: 'node-editors' },
        d.nodes.map((node, index) => el('li', {}, this.nodeFields(node, index))),
      ),
      el(
        'div',
        { class: 'field', dataset: { path: 'nodes' } },
        el('p', { class: 'field-error', hidden: true, dataset: { testid: 'field-error' } }),
      ),
      el('button', { type: 'button', class: 'secondary', dataset: { testid: 'flow-add-node' }, onclick: () => this.addNode() }, 'Add node'),
      this.field('Output node', 'output', output, 'The node whose answer is the execution’s output.'),
      this.field(
        'Device id (for device tools)',
        'deviceId',
        this.input(d.deviceId, (v) => (d.deviceId = v.trim() || undefined), { maxlength: '128', dataset: { testid: 'flow-device-id' } }),
        'One of your devices: the tasks, projects and notes tools run on it.',
      ),
      httpToolFields(this),
      originFields(this),
    ];
  }

  /** A node's fields: its id and kind, the kind's own fields, what it runs after, and its place in the list. */
  nodeFields(node, index) {
    const d = this.def;
    const path = `nodes.${index}`;
    const kindName = kindOf(node);
    const kind = NODE_KINDS[kindName];
    const others = d.nodes.filter((other) => other !== node && other.id);
    const kindSelect = el(
      'select',
      { dataset: { testid: 'node-kind' }, onchange: (e) => this.changeKind(node, e.target.value) },
      Object.entries(NODE_KINDS).map(([name, spec]) => el('option', { value: name }, spec.label)),
      kind ? null : el('option', { value: kindName, disabled: true }, kindName),
    );
    kindSelect.value = kindName;
    return el(
      'fieldset',
      { class: 'node-editor', dataset: { testid: 'flow-node-editor', index: String(index), kind: kindName } },
      el(
        'legend',
        {},
        `Node ${index + 1}${node.id ? `: ${node.id}` : ''}`,
        el('span', { class: 'badge node-problems', hidden: true, dataset: { testid: 'node-problems' } }),
      ),
      el(
        'div',
        { class: 'field-row' },
        this.field(
          'Id',
          `${path}.id`,
          el('input', {
            value: node.id ?? '',
            maxlength: '64',
            autocomplete: 'off',
            dataset: { testid: 'node-id' },
            onchange: (e) => this.rename(node, e.target.value.trim()),
          }),
        ),
        this.field('Kind', `${path}.type`, kindSelect),
      ),
      kind ? kind.fields(this, node, path) : unknownKindFields(node),
      kind?.outputSchema ? schemaField(this, node, path) : null,
      el(
        'div',
        { class: 'field', dataset: { path: `${path}.dependsOn` } },
        el(
          'fieldset',
          { class: 'checks' },
          el('legend', {}, 'Runs after'),
          others.length
            ? others.map((other) =>
                this.check(
                  (node.dependsOn ?? []).includes(other.id),
                  (on) => {
                    const deps = node.dependsOn ?? [];
                    node.dependsOn = on ? [...new Set([...deps, other.id])] : deps.filter((x) => x !== other.id);
                    this.render();
                  },
                  other.id,
                  'node-after',
                ),
              )
            : el('span', { class: 'small' }, 'No other node yet: it starts with the execution.'),
        ),
        el('p', { class: 'field-error', hidden: true, dataset: { testid: 'field-error' } }),
      ),
      // A problem of the node no field above holds (its kind, a field the form does not show).
      el('div', { class: 'field', dataset: { path } }, el('p', { class: 'field-error', hidden: true, dataset: { testid: 'field-error' } })),
      el(
        'div',
        { class: 'row' },
        el('button', { type: 'button', class: 'secondary', disabled: index === 0, onclick: () => this.move(index, -1) }, 'Move up'),
        el(
          'button',
          { type: 'button', class: 'secondary', disabled: index === d.nodes.length - 1, onclick: () => this.move(index, 1) },
          'Move down',
        ),
        el(
          'button',
          { type: 'button', class: 'danger', dataset: { testid: 'node-remove' }, onclick: () => this.removeNode(index) },
          'Remove node',
        ),
      ),
    );
  }

  // ---- structure ----

  /** Another kind for a node: its id, what it runs after, and a prompt both kinds have, stay. */
  changeKind(node, kind) {
    if (!NODE_KINDS[kind] || kind === kindOf(node)) return;
    convertNode(node, kind);
    if (!NODE_KINDS[kind].outputSchema) this.schemaTexts.delete(node);
    this.render();
    this.changed();
  }

  addNode() {
    const nodes = this.def.nodes;
    let n = nodes.length + 1;
    while (nodes.some((node) => node.id === `node${n}`)) n++;
    const last = nodes.at(-1);
    nodes.push({
      id: `node${n}`,
      prompt: last ? `Continue from {{nodes.${last.id}.output}}.` : NEW_NODE_PROMPT,
      ...(last ? { dependsOn: [last.id] } : {}),
    });
    if (!this.def.output || this.def.output === last?.id) this.def.output = `node${n}`;
    this.render();
    this.changed();
    this.root.querySelectorAll('[data-testid="node-id"]')[nodes.length - 1]?.focus();
  }

  removeNode(index) {
    const [gone] = this.def.nodes.splice(index, 1);
    for (const node of this.def.nodes) dropRefs(node, gone.id);
    if (this.def.output === gone.id) this.def.output = '';
    this.render();
    this.changed();
  }

  move(index, step) {
    const nodes = this.def.nodes;
    [nodes[index], nodes[index + step]] = [nodes[index + step], nodes[index]];
    this.render();
    this.changed();
  }

  /** A new id follows everywhere the old one was named: runs-after lists, branches, the output, prompts, expressions. */
  rename(node, id) {
    const old = node.id;
    node.id = id;
    if (old && id && old !== id) for (const other of this.def.nodes) renameRefs(other, old, id);
    if (this.def.output === old) this.def.output = id;
    this.render();
    this.changed();
  }

  // ---- problems ----

  /**
   * Marks each problem's field (the longest prefix of its path that names one) and returns the
   * problems no field holds.
   */
  showProblems(problems) {
    for (const field of this.root.querySelectorAll('.field')) {
      const error = field.querySelector(':scope > .field-error');
      if (error) ((error.textContent = ''), (error.hidden = true));
      field.classList.remove('invalid');
      for (const control of field.querySelectorAll('input, textarea, select')) control.removeAttribute('aria-invalid');
    }
    const fields = new Map([...this.root.querySelectorAll('.field')].map((field) => [field.dataset.path, field]));
    const unplaced = [];
    for (const problem of problems) {
      const parts = problem.path ? problem.path.split('.') : [];
      let field;
      for (let n = parts.length; n > 0 && !field; n--) field = fields.get(parts.slice(0, n).join('.'));
      if (!field) {
        unplaced.push(problem);
        continue;
      }
      const error = field.querySelector(':scope > .field-error');
      error.hidden = false;
      error.textContent = error.textContent ? `${error.textContent} ${problem.message}` : problem.message;
      field.classList.add('invalid');
      for (const control of field.querySelectorAll('input, textarea, select')) control.setAttribute('aria-invalid', 'true');
    }
    // Each node with a problem says how many, beside its name (the graph marks it too: problemNodes).
    const counts = new Map();
    for (const problem of problems) {
      const match = NODE_PATH.exec(problem.path ?? '');
      if (match) counts.set(Number(match[1]), (counts.get(Number(match[1])) ?? 0) + 1);
    }
    for (const fieldset of this.root.querySelectorAll('[data-testid="flow-node-editor"]')) {
      const count = counts.get(Number(fieldset.dataset.index)) ?? 0;
      fieldset.classList.toggle('invalid', count > 0);
      const badge = fieldset.querySelector('[data-testid="node-problems"]');
      badge.hidden = !count;
      badge.textContent = count === 1 ? '1 problem' : `${count} problems`;
    }
    this.problemNodes = [...counts.keys()].map((index) => this.def.nodes?.[index]?.id).filter(Boolean);
    this.root.querySelector('.field.invalid input, .field.invalid textarea, .field.invalid select')?.scrollIntoView({ block: 'center' });
    return unplaced;
  }
}
