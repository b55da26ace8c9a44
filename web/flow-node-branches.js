// The branches of a condition or router node in the agentflow form (flow-node-kinds.js): each
// branch's name, its expression (a condition's `when`) or description (what a router's model
// reads), and the nodes it leads to, ticked from the flow's other nodes; a condition's `else`
// targets. A node is the target of at most one branch of a node, so ticking it under one branch
// unticks it under the others.
import { el } from './blocks.js';

/** The branch a condition takes when none of its conditions holds. */
export const ELSE_BRANCH = 'else';

/** Checkboxes of the flow's other nodes; `set(list)` after a change. */
export function targetChecks(editor, node, chosen, set, testid) {
  const others = editor.def.nodes.filter((other) => other !== node && other.id);
  if (!others.length) return el('span', { class: 'small' }, 'Add the nodes it leads to first.');
  return others.map((other) =>
    editor.check(
      chosen.includes(other.id),
      (on) => {
        if (on) for (const list of targetLists(node)) list.splice(0, list.length, ...list.filter((id) => id !== other.id));
        set(on ? [...new Set([...chosen, other.id])] : chosen.filter((id) => id !== other.id));
        editor.render();
      },
      other.id,
      testid,
    ),
  );
}

/** Every target list of a branching node (its branches' `to`, and a condition's `else`). */
function targetLists(node) {
  return [...(node.branches ?? []).map((branch) => (branch.to ??= [])), ...(node.type === 'condition' ? [(node.else ??= [])] : [])];
}

/** A fieldset of checkboxes with its place for a problem (at `path`). */
function targetsField(editor, legend, path, checks) {
  return el(
    'div',
    { class: 'field', dataset: { path } },
    el('fieldset', { class: 'checks' }, el('legend', {}, legend), checks),
    el('p', { class: 'field-error', hidden: true, dataset: { testid: 'field-error' } }),
  );
}

/**
 * The branch editors of `node` at `path` (`nodes.<i>`): a condition's (`when` expressions, at
 * least one branch, an `else`) or a router's (descriptions, at least two).
 */
export function branchFields(editor, node, path) {
  const condition = node.type === 'condition';
  const branches = (node.branches ??= []);
  const min = condition ? 1 : 2;
  const nextName = () => {
    let n = branches.length + 1;
    while (branches.some((branch) => branch.name === `branch${n}`)) n++;
    return `branch${n}`;
  };
  return el(
    'section',
    { class: 'sub branches', 'aria-label': 'Branches' },
    el('h4', {}, condition ? 'Branches: the first whose condition holds is taken' : 'Branches: the model picks one'),
    el(
      'ol',
      { class: 'branch-editors' },
      branches.map((branch, j) => {
        const at = `${path}.branches.${j}`;
        return el(
          'li',
          { dataset: { testid: 'node-branch', index: String(j) } },
          editor.field(
            'Branch name',
            `${at}.name`,
            // Nothing else in the form shows a branch's name: typing it redraws only the graph and JSON.
            editor.input(branch.name, (v) => (branch.name = v.trim()), { maxlength: '64', dataset: { testid: 'branch-name' } }),
          ),
          condition
            ? editor.field(
                'When',
                `${at}.when`,
                editor.input(branch.when, (v) => (branch.when = v), {
                  maxlength: '500',
                  class: 'code',
                  spellcheck: 'false',
                  dataset: { testid: 'branch-when' },
                }),
                "e.g. input.priority == 'high' or nodes.<id>.output contains 'refund'",
              )
            : editor.field(
                'Description (what the router reads)',
                `${at}.description`,
                editor.input(branch.description, (v) => (v.trim() ? (branch.description = v) : delete branch.description), {
                  maxlength: '500',
                  dataset: { testid: 'branch-description' },
                }),
              ),
          targetsField(
            editor,
            'Leads to',
            `${at}.to`,
            targetChecks(editor, node, branch.to ?? [], (list) => (branch.to = list), 'branch-to'),
          ),
          el(
            'button',
            {
              type: 'button',
              class: 'danger',
              disabled: branches.length <= min,
              onclick: () => (branches.splice(j, 1), editor.render(), editor.changed()),
            },
            'Remove branch',
          ),
        );
      }),
    ),
    el(
      'div',
      { class: 'field', dataset: { path: `${path}.branches` } },
      el('p', { class: 'field-error', hidden: true, dataset: { testid: 'field-error' } }),
    ),
    el(
      'button',
      {
        type: 'button',
        class: 'secondary',
        dataset: { testid: 'node-add-branch' },
        disabled: branches.length >= 10,
        onclick: () => (
          branches.push(condition ? { name: nextName(), when: '', to: [] } : { name: nextName(), to: [] }),
          editor.render(),
          editor.changed()
        ),
      },
      'Add branch',
    ),
    condition
      ? targetsField(
          editor,
          `Otherwise (“${ELSE_BRANCH}”) leads to`,
          `${path}.else`,
          targetChecks(editor, node, node.else ?? [], (list) => (node.else = list), 'branch-else'),
        )
      : null,
  );
}
