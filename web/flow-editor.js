// A flow's definition as a form (flows-page.js): a chatflow's prompt, model and settings; an
// agentflow's nodes (id, prompt, model, the nodes it runs after, its tools, an optional output
// schema), its output node, device, HTTP tools and their allowed origins. The form edits a plain
// object; `value()` is the definition the API receives, and `showProblems()` puts each of the API's
// `{path, message}` problems next to the field at that path.
import { el } from './blocks.js';
import { httpToolFields, originFields } from './flow-editor-http.js';
import { DEVICE_TOOLS } from './tool-sentences.js';

const NEW_NODE_PROMPT = 'Write about {{input.topic}}.';
const modelKey = (model) => (model ? `${model.provider}:${model.model}` : '');
const clone = (value) => JSON.parse(JSON.stringify(value ?? {}));
/** A textarea showing `value` (its content is a property, not an attribute). */
const textarea = (props, value) => {
  const node = el('textarea', props);
  node.value = value ?? '';
  return node;
};

/** The node ids a node's prompt may read: its ancestors through `dependsOn`. */
function ancestors(nodes, id) {
  const byId = new Map(nodes.map((node) => [node.id, node]));
  const found = new Set();
  const visit = (nodeId) => {
    for (const parent of byId.get(nodeId)?.dependsOn ?? [])
      if (!found.has(parent) && byId.has(parent)) {
        found.add(parent);
        visit(parent);
      }
  };
  visit(id);
  return [...found];
}

export class FlowEditor {
  /** `onChange(definition)` after every edit (the JSON view and the graph follow it). */
  constructor({ onChange }) {
    this.onChange = onChange;
    this.models = [];
    this.type = 'agentflow';
    this.def = {};
    /** Output schemas as typed (text), by node object: parsed by value(). */
    this.schemaTexts = new WeakMap();
    this.root = el('div', { class: 'flow-editor', dataset: { testid: 'flow-editor' } });
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
      // Fields the form does not edit (a condition's branches, a foreach's items, …) are kept as they are.
      const { id: _id, prompt: _prompt, model: _model, dependsOn: _deps, tools: _tools, outputSchema: _schema, ...kept } = node;
      const out = { ...kept, id: node.id ?? '' };
      if (!node.type || node.type === 'prompt' || node.prompt !== undefined) out.prompt = node.prompt ?? '';
      if (node.model) out.model = node.model;
      if (node.dependsOn?.length) out.dependsOn = node.dependsOn;
      if (node.tools?.length) out.tools = node.tools;
      const schema = this.schemaTexts.get(node)?.trim();
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

  nodeFields(node, index) {
    const d = this.def;
    const path = `nodes.${index}`;
    const others = d.nodes.filter((other) => other !== node && other.id);
    const readable = [
      ...[...(node.prompt ?? '').matchAll(/\{\{\s*input\.([A-Za-z0-9_-]+)\s*\}\}/g)].map((m) => `{{input.${m[1]}}}`),
      ...ancestors(d.nodes, node.id).map((id) => `{{nodes.${id}.output}}`),
    ];
    const toolNames = [...DEVICE_TOOLS, ...(d.httpTools ?? []).map((tool) => tool.name).filter(Boolean)];
    const tools = node.tools ?? [];
    const checkbox = (checked, onToggle, label, testid) =>
      el(
        'label',
        { class: 'check' },
        el('input', { type: 'checkbox', checked, dataset: { testid }, onchange: (e) => (onToggle(e.target.checked), this.changed()) }),
        ` ${label}`,
      );
    const toggle = (list, item, on) => (on ? [...new Set([...list, item])] : list.filter((x) => x !== item));
    return el(
      'fieldset',
      { class: 'node-editor', dataset: { testid: 'flow-node-editor', index: String(index) } },
      el('legend', {}, `Node ${index + 1}${node.id ? `: ${node.id}` : ''}`),
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
      this.field(
        'Prompt',
        `${path}.prompt`,
        textarea(
          {
            rows: '3',
            maxlength: '8000',
            dataset: { testid: 'node-prompt' },
            oninput: (e) => ((node.prompt = e.target.value), this.changed()),
          },
          node.prompt ?? '',
        ),
        `May read ${readable.length ? readable.join(', ') : '{{input.<key>}}'} and the output of any node it runs after.`,
      ),
      this.field(
        'Model',
        `${path}.model`,
        this.modelSelect(node.model, (m) => (node.model = m), 'node-model'),
      ),
      el(
        'div',
        { class: 'field', dataset: { path: `${path}.dependsOn` } },
        el(
          'fieldset',
          { class: 'checks' },
          el('legend', {}, 'Runs after'),
          others.length
            ? others.map((other) =>
                checkbox(
                  (node.dependsOn ?? []).includes(other.id),
                  (on) => {
                    node.dependsOn = toggle(node.dependsOn ?? [], other.id, on);
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
      el(
        'div',
        { class: 'field', dataset: { path: `${path}.tools` } },
        el(
          'details',
          { open: tools.length > 0 },
          el('summary', {}, `Tools (${tools.length} chosen)`),
          el(
            'div',
            { class: 'checks' },
            toolNames.map((name) =>
              checkbox(tools.includes(name), (on) => (node.tools = toggle(node.tools ?? [], name, on)), name, 'node-tool'),
            ),
          ),
        ),
        el('p', { class: 'field-error', hidden: true, dataset: { testid: 'field-error' } }),
      ),
      this.field(
        'Output schema (optional, JSON Schema)',
        `${path}.outputSchema`,
        textarea(
          {
            rows: '2',
            class: 'code',
            spellcheck: 'false',
            dataset: { testid: 'node-output-schema' },
            oninput: (e) => (this.schemaTexts.set(node, e.target.value), this.changed()),
          },
          this.schemaTexts.get(node) ?? '',
        ),
        'When set, the node answers JSON that matches it.',
      ),
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
    for (const node of this.def.nodes) if (node.dependsOn) node.dependsOn = node.dependsOn.filter((id) => id !== gone.id);
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

  /** A new id follows everywhere the old one was named: runs-after lists, the output, prompts. */
  rename(node, id) {
    const old = node.id;
    node.id = id;
    if (old && id && old !== id)
      for (const other of this.def.nodes) {
        if (other.dependsOn) other.dependsOn = other.dependsOn.map((dep) => (dep === old ? id : dep));
        if (other.prompt) other.prompt = other.prompt.split(`{{nodes.${old}.output}}`).join(`{{nodes.${id}.output}}`);
      }
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
    this.root.querySelector('.field.invalid input, .field.invalid textarea, .field.invalid select')?.scrollIntoView({ block: 'center' });
    return unplaced;
  }
}
