// The agentflow form's `human_input` node (an entry of NODE_KINDS, flow-node-kinds.js): what the
// recipients read, the form as JSON Schema text with a live preview drawn exactly as the answering
// form draws it (input-forms.js), the recipients, the decision buttons (each a branch leading to
// nodes) and the timeout with its outcome. Form text that is not JSON is a problem at
// `nodes.<i>.form` before anything is sent.
import { el } from './blocks.js';
import { targetChecks } from './flow-node-branches.js';
import { control, formFields } from './input-forms.js';

/** The form's JSON text per node, as typed (it may not parse yet). */
const formTexts = new WeakMap();
const formText = (node) => formTexts.get(node) ?? (node.form ? JSON.stringify(node.form, null, 2) : '');
const OUTCOMES = {
  fail: 'The node fails',
  default: 'Take the default answer',
  decision: 'Take a decision',
};

/** The decisions as objects (one given as a string is a button of that name leading nowhere). */
const decisionsOf = (node) => (node.decisions ?? []).map((d) => (typeof d === 'string' ? { name: d } : d));

/** The preview of a form schema text: its fields as the recipients will see them, or what is wrong. */
export function formPreview(text) {
  const box = el('div', { class: 'form-preview', dataset: { testid: 'node-form-preview' } });
  if (!text.trim()) return (box.append(el('p', { class: 'small' }, 'No fields: the recipients only choose a decision.')), box);
  let form;
  try {
    form = JSON.parse(text);
  } catch (error) {
    box.dataset.invalid = 'true';
    return (box.append(el('p', { class: 'field-error' }, `Not valid JSON: ${error.message}`)), box);
  }
  const fields = formFields(form);
  if (!fields.length) return (box.append(el('p', { class: 'small' }, 'No properties: the form has no fields.')), box);
  box.append(
    el('p', { class: 'small' }, 'Preview'),
    ...fields.map((field) => {
      const id = `preview-${Math.random().toString(36).slice(2)}-${field.name}`;
      return el(
        'p',
        { class: 'field' },
        el('label', { for: id }, `${field.schema.title ?? field.name}${field.required ? ' *' : ''}`),
        ' ',
        control(field, id),
        field.schema.description ? el('span', { class: 'small' }, ` ${field.schema.description}`) : null,
      );
    }),
  );
  return box;
}

function formField(editor, node, path) {
  let preview = formPreview(formText(node));
  const area = editor.area(
    {
      rows: '5',
      class: 'code',
      spellcheck: 'false',
      dataset: { testid: 'node-form' },
      oninput: (e) => {
        formTexts.set(node, e.target.value);
        const next = formPreview(e.target.value);
        preview.replaceWith(next);
        preview = next;
        editor.changed();
      },
    },
    formText(node),
  );
  return [
    editor.field(
      'Form (JSON Schema of an object)',
      `${path}.form`,
      area,
      'Its properties are the fields: strings, numbers, booleans and enums (a choice).',
    ),
    preview,
  ];
}

function decisionFields(editor, node, path) {
  const decisions = decisionsOf(node);
  node.decisions = decisions;
  const nextName = () => {
    let n = decisions.length + 1;
    while (decisions.some((d) => d.name === `decision${n}`)) n++;
    return `decision${n}`;
  };
  return el(
    'section',
    { class: 'sub branches', 'aria-label': 'Decisions' },
    el('h4', {}, 'Decision buttons (optional): each may lead to nodes, the others’ are skipped'),
    el(
      'ol',
      { class: 'branch-editors' },
      decisions.map((decision, j) => {
        const at = `${path}.decisions.${j}`;
        return el(
          'li',
          { dataset: { testid: 'node-decision', index: String(j) } },
          editor.field(
            'Decision name',
            `${at}.name`,
            editor.input(decision.name, (v) => (decision.name = v.trim()), { maxlength: '64', dataset: { testid: 'decision-name' } }),
          ),
          editor.field(
            'Button text',
            `${at}.label`,
            editor.input(decision.label, (v) => (v.trim() ? (decision.label = v) : delete decision.label), {
              maxlength: '100',
              dataset: { testid: 'decision-label' },
            }),
          ),
          el(
            'div',
            { class: 'field', dataset: { path: `${at}.to` } },
            el(
              'fieldset',
              { class: 'checks' },
              el('legend', {}, 'Leads to'),
              targetChecks(
                editor,
                node,
                decision.to ?? [],
                (list) => (list.length ? (decision.to = list) : delete decision.to),
                'decision-to',
              ),
            ),
            el('p', { class: 'field-error', hidden: true, dataset: { testid: 'field-error' } }),
          ),
          el(
            'button',
            { type: 'button', class: 'danger', onclick: () => (decisions.splice(j, 1), editor.render(), editor.changed()) },
            'Remove decision',
          ),
        );
      }),
    ),
    el(
      'button',
      {
        type: 'button',
        class: 'secondary',
        dataset: { testid: 'node-add-decision' },
        disabled: decisions.length >= 10,
        onclick: () => (decisions.push({ name: nextName() }), editor.render(), editor.changed()),
      },
      'Add decision',
    ),
  );
}

function timeoutFields(editor, node, path) {
  const timeout = node.timeout;
  const outcome = el(
    'select',
    {
      dataset: { testid: 'node-timeout-outcome' },
      disabled: !timeout,
      onchange: (e) => {
        if (!node.timeout) return;
        node.timeout.outcome = e.target.value;
        editor.render();
        editor.changed();
      },
    },
    Object.entries(OUTCOMES).map(([value, label]) => el('option', { value }, label)),
  );
  outcome.value = timeout?.outcome ?? 'fail';
  return el(
    'div',
    { class: 'field-row' },
    editor.field(
      'Time out after (seconds)',
      `${path}.timeout.seconds`,
      el('input', {
        type: 'number',
        min: '60',
        max: String(30 * 24 * 3600),
        step: '1',
        value: timeout?.seconds ?? '',
        placeholder: '86400',
        dataset: { testid: 'node-timeout-seconds' },
        onchange: (e) => {
          if (e.target.value === '') delete node.timeout;
          else node.timeout = { ...(node.timeout ?? { outcome: 'fail' }), seconds: Number(e.target.value) };
          editor.render();
          editor.changed();
        },
      }),
      'Empty: a day, then the node fails.',
    ),
    editor.field('Then', `${path}.timeout.outcome`, outcome),
    timeout && timeout.outcome !== 'fail'
      ? editor.field(
          'Decision taken',
          `${path}.timeout.decision`,
          editor.input(timeout.decision, (v) => (v.trim() ? (timeout.decision = v.trim()) : delete timeout.decision), {
            maxlength: '64',
            dataset: { testid: 'node-timeout-decision' },
          }),
        )
      : null,
  );
}

/** The `human_input` entry of NODE_KINDS. */
export const humanInputKind = (promptField) => ({
  label: 'Human input: a form people answer',
  blank: () => ({ prompt: '', form: { type: 'object', properties: {} } }),
  fields: (editor, node, path) => [
    promptField(editor, node, path, { label: 'What the recipients read' }),
    ...formField(editor, node, path),
    editor.field(
      'Recipients (user ids or emails, comma-separated)',
      `${path}.recipients`,
      editor.input(
        (node.recipients ?? []).join(', '),
        (v) => {
          const list = v
            .split(',')
            .map((x) => x.trim())
            .filter(Boolean);
          if (list.length) node.recipients = list;
          else delete node.recipients;
        },
        { maxlength: '4000', dataset: { testid: 'node-recipients' } },
      ),
      'Empty: the flow’s owner. Others must share a canvas with the owner.',
    ),
    decisionFields(editor, node, path),
    timeoutFields(editor, node, path),
  ],
  /** A form text that does not parse, as a problem of the form before anything is sent. */
  problems: (node, index) => {
    const text = formText(node).trim();
    if (!text) return [];
    try {
      JSON.parse(text);
      return [];
    } catch (error) {
      return [{ path: `nodes.${index}.form`, message: `Not valid JSON: ${error.message}` }];
    }
  },
  value: (node) => {
    const text = formText(node).trim();
    let form;
    try {
      form = text ? JSON.parse(text) : undefined;
    } catch {
      form = node.form;
    }
    const decisions = decisionsOf(node).map((d) => ({
      name: d.name ?? '',
      ...(d.label ? { label: d.label } : {}),
      ...(d.to?.length ? { to: d.to } : {}),
    }));
    return {
      type: 'human_input',
      ...(node.prompt?.trim() ? { prompt: node.prompt } : {}),
      ...(form !== undefined ? { form } : {}),
      ...(node.recipients?.length ? { recipients: node.recipients } : {}),
      ...(decisions.length ? { decisions } : {}),
      ...(node.timeout ? { timeout: node.timeout } : {}),
    };
  },
});
