// The kinds of agentflow node the form (flow-editor.js) edits, one entry each in NODE_KINDS: its
// label, what a node of the kind starts with, its fields, and the node the API receives from them
// (the server's rules: src/flows/node-kinds.ts). A node of a kind missing from the table is kept
// exactly as it came and shown as JSON, so a save never drops what the form cannot edit.
import { el } from './blocks.js';
import { branchFields, ELSE_BRANCH } from './flow-node-branches.js';
import { inputKeys } from './flow-inputs.js';
import { humanInputKind } from './flow-node-human-input.js';
import { DEVICE_TOOLS } from './tool-sentences.js';

export { ELSE_BRANCH };
export const kindOf = (node) => node?.type ?? 'prompt';
const isBranching = (node) => node.type === 'condition' || node.type === 'router' || node.type === 'human_input';

/** A branching node's branches by name with their targets (a condition's `else` last). */
export function branchesOf(node) {
  if (!isBranching(node)) return [];
  if (node.type === 'human_input')
    return (node.decisions ?? []).map((d) => (typeof d === 'string' ? { name: d, to: [] } : { name: d.name, to: d.to ?? [] }));
  const named = (node.branches ?? []).map((branch) => ({ name: branch.name, to: branch.to ?? [] }));
  return node.type === 'condition' && node.else?.length ? [...named, { name: ELSE_BRANCH, to: node.else }] : named;
}

/** Each node's dependencies: its `dependsOn` and every condition or router with a branch to it. */
export function effectiveDeps(nodes) {
  const deps = new Map(nodes.map((node) => [node.id, [...(node.dependsOn ?? [])]]));
  for (const node of nodes)
    for (const branch of branchesOf(node))
      for (const target of branch.to) {
        const list = deps.get(target);
        if (list && !list.includes(node.id)) list.push(node.id);
      }
  return deps;
}

/** The ids a node may read the output of: its ancestors, branches included. */
export function ancestors(nodes, id) {
  const deps = effectiveDeps(nodes);
  const found = new Set();
  const visit = (nodeId) => {
    for (const parent of deps.get(nodeId) ?? [])
      if (!found.has(parent) && deps.has(parent)) {
        found.add(parent);
        visit(parent);
      }
  };
  visit(id);
  return [...found];
}

// ---- fields shared by several kinds ----

function promptField(editor, node, path, { label = 'Prompt', locals = [] } = {}) {
  const readable = [
    ...[...(node.prompt ?? '').matchAll(/\{\{\s*input\.([A-Za-z0-9_-]+)\s*\}\}/g)].map((m) => `{{input.${m[1]}}}`),
    ...ancestors(editor.def.nodes, node.id).map((id) => `{{nodes.${id}.output}}`),
    ...locals,
  ];
  return editor.field(
    label,
    `${path}.prompt`,
    editor.area(
      {
        rows: '3',
        maxlength: '8000',
        dataset: { testid: 'node-prompt' },
        oninput: (e) => ((node.prompt = e.target.value), editor.changed()),
      },
      node.prompt,
    ),
    `May read ${[...new Set(readable)].join(', ') || '{{input.<key>}}'} and the output of any node it runs after.`,
  );
}

const modelField = (editor, node, path) =>
  editor.field(
    'Model',
    `${path}.model`,
    editor.modelSelect(node.model, (m) => (m ? (node.model = m) : delete node.model), 'node-model'),
  );

const numberField = (editor, label, path, value, set, props, hint) =>
  editor.field(
    label,
    path,
    el('input', {
      type: 'number',
      value: value ?? '',
      ...props,
      oninput: (e) => (set(e.target.value === '' ? undefined : Number(e.target.value)), editor.changed()),
    }),
    hint,
  );

const expressionField = (editor, label, path, value, set, testid, hint) =>
  editor.field(label, path, editor.input(value, set, { maxlength: '500', class: 'code', spellcheck: 'false', dataset: { testid } }), hint);

function toolsField(editor, node, path) {
  const names = [...DEVICE_TOOLS, ...(editor.def.httpTools ?? []).map((tool) => tool.name).filter(Boolean)];
  const tools = node.tools ?? [];
  const toggle = (name, on) => {
    const now = node.tools ?? [];
    node.tools = on ? [...new Set([...now, name])] : now.filter((x) => x !== name);
    if (!node.tools.length) delete node.tools;
  };
  return el(
    'div',
    { class: 'field', dataset: { path: `${path}.tools` } },
    el(
      'details',
      { open: tools.length > 0 },
      el('summary', {}, `Tools (${tools.length} chosen)`),
      el(
        'div',
        { class: 'checks' },
        names.map((name) => editor.check(tools.includes(name), (on) => toggle(name, on), name, 'node-tool')),
      ),
    ),
    el('p', { class: 'field-error', hidden: true, dataset: { testid: 'field-error' } }),
  );
}

const schemaField = (editor, node, path) =>
  editor.field(
    'Output schema (optional, JSON Schema)',
    `${path}.outputSchema`,
    editor.area(
      {
        rows: '2',
        class: 'code',
        spellcheck: 'false',
        dataset: { testid: 'node-output-schema' },
        oninput: (e) => (editor.schemaTexts.set(node, e.target.value), editor.changed()),
      },
      editor.schemaTexts.get(node) ?? '',
    ),
    'When set, the node answers JSON that matches it.',
  );

/** A subflow's flow (one of the owner's other agentflows), its version, and its input templates. */
function subflowFields(editor, node, path) {
  const flows = editor.flows.filter((flow) => flow.type === 'agentflow' && flow.id !== editor.flowId);
  const known = flows.some((flow) => flow.id === node.flowId);
  const select = el(
    'select',
    {
      dataset: { testid: 'node-subflow' },
      onchange: (e) => {
        node.flowId = e.target.value;
        // The keys the chosen flow reads, ready to fill.
        const chosen = flows.find((flow) => flow.id === node.flowId);
        node.input ??= {};
        for (const key of inputKeys(chosen?.definition)) node.input[key] ??= '';
        editor.render();
        editor.changed();
      },
    },
    el('option', { value: '' }, 'Choose one of your agentflows'),
    flows.map((flow) => el('option', { value: flow.id }, flow.name)),
    node.flowId && !known ? el('option', { value: node.flowId }, node.flowId) : null,
  );
  select.value = node.flowId ?? '';
  const input = (node.input ??= {});
  const newKey = el('input', { maxlength: '64', autocomplete: 'off', placeholder: 'key', dataset: { testid: 'subflow-input-key' } });
  return [
    editor.field('Flow', `${path}.flowId`, select, 'It runs as a child execution with its own record and budget.'),
    numberField(
      editor,
      'Version (empty: the published one)',
      `${path}.version`,
      node.version,
      (v) => (v === undefined ? delete node.version : (node.version = v)),
      { min: '1', step: '1', dataset: { testid: 'node-subflow-version' } },
    ),
    el(
      'div',
      { class: 'field', dataset: { path: `${path}.input` } },
      el(
        'fieldset',
        { class: 'subflow-input' },
        el('legend', {}, 'Its input (each value may read {{input.<key>}} and the outputs of the nodes it runs after)'),
        Object.keys(input).map((key) =>
          el(
            'div',
            { class: 'row' },
            el(
              'label',
              { class: 'grow' },
              `${key} `,
              editor.input(input[key], (v) => (input[key] = v), { maxlength: '8000', dataset: { testid: 'subflow-input', key } }),
            ),
            el(
              'button',
              { type: 'button', class: 'danger', onclick: () => (delete input[key], editor.render(), editor.changed()) },
              'Remove',
            ),
          ),
        ),
        el(
          'div',
          { class: 'row' },
          newKey,
          el(
            'button',
            {
              type: 'button',
              class: 'secondary',
              onclick: () => {
                const key = newKey.value.trim();
                if (!key) return newKey.focus();
                input[key] ??= '';
                editor.render();
                editor.changed();
              },
            },
            'Add input',
          ),
        ),
      ),
      el('p', { class: 'field-error', hidden: true, dataset: { testid: 'field-error' } }),
    ),
  ];
}

const withModel = (node) => (node.model ? { model: node.model } : {});
const withPrompt = (node) => ({ prompt: node.prompt ?? '', ...withModel(node) });

/**
 * The node kinds. Each: `label`, `blank()` (the fields a node of the kind starts with), `fields(editor,
 * node, path)` (its controls, each at the path the API names its problems by), `value(node)` (the
 * node the API receives, without `id`, `dependsOn` and `outputSchema`, which the form adds), and
 * `outputSchema` when it may answer JSON.
 */
export const NODE_KINDS = {
  prompt: {
    label: 'Ask: one answer from the AI',
    outputSchema: true,
    blank: () => ({ prompt: '' }),
    fields: (editor, node, path) => [promptField(editor, node, path), modelField(editor, node, path), toolsField(editor, node, path)],
    value: (node) => ({
      ...(node.type ? { type: node.type } : {}),
      ...withPrompt(node),
      ...(node.tools?.length ? { tools: node.tools } : {}),
    }),
  },
  condition: {
    label: 'Condition: the first branch whose test holds',
    blank: () => ({ branches: [{ name: 'yes', when: '', to: [] }], else: [] }),
    fields: (editor, node, path) => [branchFields(editor, node, path)],
    value: (node) => ({
      type: 'condition',
      branches: (node.branches ?? []).map((b) => ({ name: b.name ?? '', when: b.when ?? '', to: b.to ?? [] })),
      ...(node.else?.length ? { else: node.else } : {}),
    }),
  },
  router: {
    label: 'Router: an AI picks a branch',
    blank: () => ({
      prompt: '',
      branches: [
        { name: 'first', to: [] },
        { name: 'second', to: [] },
      ],
    }),
    fields: (editor, node, path) => [
      promptField(editor, node, path, { label: 'Question for the router' }),
      modelField(editor, node, path),
      branchFields(editor, node, path),
    ],
    value: (node) => ({
      type: 'router',
      ...withPrompt(node),
      branches: (node.branches ?? []).map((b) => ({
        name: b.name ?? '',
        ...(b.description ? { description: b.description } : {}),
        to: b.to ?? [],
      })),
    }),
  },
  foreach: {
    label: 'For each: once per item of a list',
    outputSchema: true,
    blank: () => ({ items: '', prompt: 'Answer about {{item}}.', concurrency: 3 }),
    fields: (editor, node, path) => [
      expressionField(
        editor,
        'Items (a path to a list)',
        `${path}.items`,
        node.items,
        (v) => (node.items = v),
        'node-items',
        'input.<key> or nodes.<id>.output.<field>: a list, at most 100 items',
      ),
      promptField(editor, node, path, { label: 'Prompt (per item)', locals: ['{{item}}', '{{index}}'] }),
      numberField(editor, 'At most this many at once', `${path}.concurrency`, node.concurrency, (v) => (node.concurrency = v), {
        min: '1',
        max: '10',
        step: '1',
        dataset: { testid: 'node-concurrency' },
      }),
      modelField(editor, node, path),
    ],
    value: (node) => ({
      type: 'foreach',
      items: node.items ?? '',
      ...withPrompt(node),
      ...(node.concurrency !== undefined ? { concurrency: node.concurrency } : {}),
    }),
  },
  loop: {
    label: 'Loop: repeats up to a bound',
    outputSchema: true,
    blank: () => ({ prompt: 'Improve this draft: {{loop.previous}}', maxIterations: 3 }),
    fields: (editor, node, path) => [
      promptField(editor, node, path, { label: 'Prompt (each iteration)', locals: ['{{loop.previous}}', '{{loop.iteration}}'] }),
      numberField(
        editor,
        'Max iterations',
        `${path}.maxIterations`,
        node.maxIterations,
        (v) => (v === undefined ? delete node.maxIterations : (node.maxIterations = v)),
        { min: '1', max: '20', step: '1', dataset: { testid: 'node-max-iterations' } },
        'Required: 1 to 20.',
      ),
      expressionField(
        editor,
        'Stop when (optional)',
        `${path}.until`,
        node.until,
        (v) => (v.trim() ? (node.until = v) : delete node.until),
        'node-until',
        "Over output and iteration, e.g. output contains 'Kind regards'",
      ),
      modelField(editor, node, path),
    ],
    value: (node) => ({
      type: 'loop',
      ...withPrompt(node),
      ...(node.maxIterations !== undefined ? { maxIterations: node.maxIterations } : {}),
      ...(node.until?.trim() ? { until: node.until } : {}),
    }),
  },
  subflow: {
    label: 'Subflow: runs another agentflow',
    blank: () => ({ flowId: '', input: {} }),
    fields: subflowFields,
    value: (node) => ({
      type: 'subflow',
      flowId: node.flowId ?? '',
      ...(node.version !== undefined ? { version: node.version } : {}),
      input: { ...(node.input ?? {}) },
    }),
  },
  human_input: humanInputKind(promptField),
};

/** Makes `node` a node of `kind` in place: its id and what it runs after stay, and a prompt and model when both kinds have one. */
export function convertNode(node, kind) {
  const { id, dependsOn, prompt, model } = node;
  for (const key of Object.keys(node)) delete node[key];
  const blank = NODE_KINDS[kind].blank();
  Object.assign(node, { id, ...(kind === 'prompt' ? {} : { type: kind }), ...blank }, dependsOn?.length ? { dependsOn } : {});
  if ('prompt' in blank && prompt) node.prompt = prompt;
  if ('prompt' in blank && model) node.model = model;
}

const escape = (text) => text.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&');
/** `nodes.<old>.output` becomes `nodes.<id>.output` in a template or expression. */
const renameRef = (text, old, id) =>
  typeof text === 'string'
    ? text.replace(new RegExp(`(^|[^A-Za-z0-9_.-])nodes\\.${escape(old)}\\.output`, 'g'), `$1nodes.${id}.output`)
    : text;

/** A node renamed from `old` to `id`: every place `other` names it follows. */
export function renameRefs(other, old, id) {
  const swap = (list) => list?.map((x) => (x === old ? id : x));
  if (other.dependsOn) other.dependsOn = swap(other.dependsOn);
  for (const branch of other.branches ?? []) branch.to = swap(branch.to);
  for (const decision of other.decisions ?? []) if (decision.to) decision.to = swap(decision.to);
  if (Array.isArray(other.else)) other.else = swap(other.else);
  for (const key of ['prompt', 'items', 'until']) if (other[key] !== undefined) other[key] = renameRef(other[key], old, id);
  for (const branch of other.branches ?? []) if (branch.when !== undefined) branch.when = renameRef(branch.when, old, id);
  if (other.type === 'subflow' && other.input)
    for (const key of Object.keys(other.input)) other.input[key] = renameRef(other.input[key], old, id);
}

/** A node removed: `other` no longer runs after it or branches to it. */
export function dropRefs(other, gone) {
  if (other.dependsOn) other.dependsOn = other.dependsOn.filter((id) => id !== gone);
  for (const branch of other.branches ?? []) if (branch.to) branch.to = branch.to.filter((id) => id !== gone);
  for (const decision of other.decisions ?? []) if (decision.to) decision.to = decision.to.filter((id) => id !== gone);
  if (Array.isArray(other.else)) other.else = other.else.filter((id) => id !== gone);
}

/** Fields for a node of a kind this form does not know: shown, kept as they are. */
export const unknownKindFields = (node) => [
  el('p', { class: 'small' }, `A “${node.type}” node: this form does not edit it yet; its fields are kept as they are.`),
  el('pre', { class: 'flow-output', dataset: { testid: 'node-unknown' } }, JSON.stringify(node, null, 2)),
];

export { schemaField };
