// Forms of agentflows' human_input nodes that wait for the signed-in user's answer, beside the
// approvals. Loaded from `GET /hitl/inputs?status=pending` (and again after every socket reconnect);
// the tab's `/canvas` socket then pushes `input_requested` and `input_resolved`. Each form is drawn
// from its JSON Schema: string, number, integer and boolean fields, and enums as a choice; anything
// else is edited as JSON. Answered with `POST /hitl/inputs/:id/answer` through one of its decision
// buttons (or Submit when it has none); a 400 shows the API's problems next to the fields.
import { el } from './blocks.js';

const $ = (id) => document.querySelector(`[data-testid="${id}"]`);

/** The fields of a form schema in their order (`propertyOrder`, then any other): `{name, schema, required}`. */
export function formFields(form) {
  const properties = form && typeof form.properties === 'object' && form.properties ? form.properties : {};
  const required = new Set(Array.isArray(form?.required) ? form.required : []);
  const order = Array.isArray(form?.propertyOrder) ? form.propertyOrder.filter((name) => Object.hasOwn(properties, name)) : [];
  const names = [...new Set([...order, ...Object.keys(properties)])];
  return names.map((name) => ({ name, schema: properties[name] ?? {}, required: required.has(name) }));
}

const typeOf = (schema) => (Array.isArray(schema.type) ? schema.type.find((type) => type !== 'null') : schema.type);

/** One field's control: a checkbox, a choice, a number or a text box; JSON text for anything else. */
export function control(field, id) {
  const { schema } = field;
  const type = typeOf(schema);
  const common = { id, name: field.name, dataset: { testid: 'input-field', field: field.name } };
  if (Array.isArray(schema.enum))
    return el(
      'select',
      common,
      field.required ? null : el('option', { value: '' }, '—'),
      schema.enum.map((value) => el('option', { value: JSON.stringify(value) }, String(value))),
    );
  if (type === 'boolean') return el('input', { ...common, type: 'checkbox', checked: schema.default === true });
  if (type === 'number' || type === 'integer')
    return el('input', {
      ...common,
      type: 'number',
      step: type === 'integer' ? '1' : 'any',
      min: schema.minimum,
      max: schema.maximum,
      value: schema.default,
    });
  if (type === 'string')
    return schema.maxLength !== undefined && schema.maxLength <= 200
      ? el('input', { ...common, type: 'text', maxLength: schema.maxLength, value: schema.default })
      : el('textarea', { ...common, rows: 2 }, schema.default ?? '');
  return el('textarea', { ...common, rows: 3, dataset: { ...common.dataset, json: 'true' } }, '');
}

/** The values of a drawn form, as the API takes them; `problems` gets the fields that are not valid JSON. */
function valuesOf(fields, root, problems) {
  const values = {};
  for (const field of fields) {
    const input = root.querySelector(`[data-field="${CSS.escape(field.name)}"]`);
    if (!input) continue;
    const type = typeOf(field.schema);
    if (Array.isArray(field.schema.enum)) {
      if (input.value !== '') values[field.name] = JSON.parse(input.value);
    } else if (type === 'boolean') values[field.name] = input.checked;
    else if (type === 'number' || type === 'integer') {
      if (input.value !== '') values[field.name] = Number(input.value);
    } else if (input.dataset.json) {
      if (input.value.trim() === '') continue;
      try {
        values[field.name] = JSON.parse(input.value);
      } catch {
        problems.push({ path: `values.${field.name}`, message: 'not valid JSON' });
      }
    } else if (input.value !== '' || field.required) values[field.name] = input.value;
  }
  return values;
}

export class InputFormsPanel {
  constructor({ api, socket, notify }) {
    this.api = api;
    this.notify = notify;
    this.running = false;
    /** Pending forms by id, in arrival order, and their elements once drawn. */
    this.pending = new Map();
    this.drawn = new Map();
    socket.on('connect', () => void this.load());
    socket.on('input_requested', (form) => {
      if (!this.running) return;
      this.pending.set(form.inputId, { id: form.inputId, ...form });
      this.render();
    });
    socket.on('input_resolved', ({ inputId }) => {
      if (this.pending.delete(inputId)) this.render();
    });
  }

  start() {
    if (this.running) return;
    this.running = true;
    $('inputs-panel').hidden = false;
    void this.load();
  }

  stop() {
    this.running = false;
    this.pending.clear();
    this.drawn.clear();
    $('inputs-panel').hidden = true;
    $('input-list').replaceChildren();
  }

  /** The pending list from the API: the truth after (re)connecting. */
  async load() {
    if (!this.running) return;
    const known = new Set(this.pending.keys());
    try {
      const { inputs } = await this.api.get('/hitl/inputs?status=pending');
      const listed = new Set(inputs.map((form) => form.id));
      for (const id of known) if (!listed.has(id)) this.pending.delete(id);
      for (const form of inputs) if (!this.pending.has(form.id)) this.pending.set(form.id, form);
      this.render();
    } catch (error) {
      if (error.status === 401) this.stop();
    }
  }

  /** Draws the list; a form already drawn keeps its element, so what the person typed stays. */
  render() {
    const forms = [...this.pending.values()];
    for (const id of this.drawn.keys()) if (!this.pending.has(id)) this.drawn.delete(id);
    $('inputs-empty').hidden = forms.length > 0;
    $('input-list').replaceChildren(
      ...forms.map((form) => {
        if (!this.drawn.has(form.id)) this.drawn.set(form.id, this.item(form));
        return this.drawn.get(form.id);
      }),
    );
  }

  /** One form: its prompt, its fields, its decision buttons, and a place for the API's problems. */
  item(form) {
    const fields = formFields(form.form);
    const problems = el('ul', { class: 'small problems', dataset: { testid: 'input-problems' }, role: 'alert' });
    const decisions = form.decisions?.length ? form.decisions : [{ name: null, label: 'Submit' }];
    const node = el(
      'li',
      { class: 'approval input-form', dataset: { testid: 'input-form', inputId: form.id } },
      el('p', { class: 'tool-sentence' }, form.prompt || `The flow asks for your answer (${form.nodeId}).`),
      el(
        'form',
        { onsubmit: (event) => event.preventDefault() },
        fields.map((field) => {
          const id = `input-${form.id}-${field.name}`;
          return el(
            'p',
            { class: 'field' },
            el('label', { for: id }, `${field.schema.title ?? field.name}${field.required ? ' *' : ''}`),
            ' ',
            control(field, id),
            field.schema.description ? el('span', { class: 'small' }, ` ${field.schema.description}`) : null,
          );
        }),
        problems,
        el('p', { class: 'small' }, `Expires ${new Date(form.expiresAt).toLocaleString()}`),
        el(
          'div',
          { class: 'row' },
          decisions.map((decision, index) =>
            el(
              'button',
              {
                type: 'button',
                class: index === 0 ? undefined : 'secondary',
                dataset: { testid: 'input-decision', decision: decision.name ?? '' },
                onclick: () => this.answer(form, fields, node, problems, decision.name),
              },
              decision.label,
            ),
          ),
        ),
      ),
    );
    return node;
  }

  async answer(form, fields, node, problems, decision) {
    const local = [];
    const values = valuesOf(fields, node, local);
    const show = (list) => problems.replaceChildren(...list.map((p) => el('li', {}, `${p.path}: ${p.message}`)));
    if (local.length) return show(local);
    try {
      await this.api.post(`/hitl/inputs/${form.id}/answer`, decision ? { values, decision } : { values });
      this.notify(`Answered: ${form.prompt || form.nodeId}${decision ? ` (${decision})` : ''}.`);
    } catch (error) {
      if (error.status === 400) return show(error.details ?? [{ path: 'values', message: error.message }]);
      this.notify(error.status === 409 ? 'This form was already answered, expired or ended.' : `Could not answer: ${error.message}`, true);
    }
    // input_resolved clears it; this covers a socket that is down.
    if (this.pending.delete(form.id)) this.render();
  }
}
