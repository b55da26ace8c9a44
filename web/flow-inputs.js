// The input of an agentflow: the keys its definition reads (`{{input.<key>}}` in prompts and in a
// subflow's input templates, `input.<key>` in conditions, loop guards and foreach items), and the
// fields a person fills for them (the Run form, a schedule's input). A value written as a JSON list
// or object (`[…]`, `{…}`) is sent as that value, so a foreach can run over it; anything else is
// sent as the text it is.
import { el } from './blocks.js';

const TEMPLATE_INPUT = /\{\{\s*input\.([A-Za-z0-9_-]+)\s*\}\}/g;
const EXPRESSION_INPUT = /(?:^|[^A-Za-z0-9_.'"-])input\.([A-Za-z0-9_-]+)/g;

/** The input keys a definition reads, in order of first use. */
export function inputKeys(definition) {
  const keys = new Set();
  for (const node of definition?.nodes ?? []) {
    const templates = [node.prompt, ...(node.type === 'subflow' ? Object.values(node.input ?? {}) : [])];
    for (const template of templates) for (const match of String(template ?? '').matchAll(TEMPLATE_INPUT)) keys.add(match[1]);
    const expressions = [node.items, node.until, ...(node.type === 'condition' ? (node.branches ?? []).map((b) => b.when) : [])];
    for (const expression of expressions) for (const match of String(expression ?? '').matchAll(EXPRESSION_INPUT)) keys.add(match[1]);
  }
  return [...keys];
}

/** A typed value as the API receives it: JSON for a list or object that parses, else the text. */
export function inputValue(text) {
  if (!/^\s*[[{]/.test(text)) return text;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** How a stored value is shown in its field (the inverse of {@link inputValue}). */
const shown = (value) => (value === undefined || value === null ? '' : typeof value === 'string' ? value : JSON.stringify(value));

/**
 * One labelled field per key (`data-testid=<testid>`, `data-key`), filled from `values`; a note
 * when there is none.
 */
export function inputFields(keys, { testid, values = {}, pathPrefix = 'input' }) {
  if (!keys.length) return [el('p', { class: 'small' }, 'This flow reads no input.')];
  return [
    ...keys.map((key) => {
      const area = el('textarea', { rows: '2', dataset: { testid, key } });
      area.value = shown(values[key]);
      return el(
        'div',
        { class: 'field', dataset: { path: `${pathPrefix}.${key}` } },
        el('label', {}, `${key} `, area),
        el('p', { class: 'field-error', hidden: true, dataset: { testid: 'field-error' } }),
      );
    }),
    el('p', { class: 'small hint' }, 'A list or an object written as JSON ([…] or {…}) is sent as that value.'),
  ];
}

/** The values of the fields {@link inputFields} made, by key. */
export function readInputs(container, testid) {
  return Object.fromEntries(
    [...container.querySelectorAll(`[data-testid="${testid}"]`)].map((area) => [area.dataset.key, inputValue(area.value)]),
  );
}
