// What an execution's page (flow-execution.js) shows of its control flow, per node: that a node
// was skipped (no branch taken leads to it), which branch a condition or router took and where it
// led, a foreach's answered items and a loop's iterations (from the `item_completed` events, which
// a finished execution replays), and a subflow's child execution.
import { el } from './blocks.js';
import { branchesOf } from './flow-node-kinds.js';

const text = (value) => (value === null || value === undefined ? '' : typeof value === 'string' ? value : JSON.stringify(value, null, 2));

/**
 * The control-flow state an execution's events carry beyond its node rows: items by node (index →
 * output) and child executions by node. `apply()` takes one event; true when it was one of these.
 */
export class ControlState {
  constructor() {
    this.items = new Map();
    this.children = new Map();
  }

  apply(event, data) {
    if (event === 'item_completed') {
      if (!this.items.has(data.nodeId)) this.items.set(data.nodeId, new Map());
      this.items.get(data.nodeId).set(data.index, data.output);
      return true;
    }
    if (event === 'subflow_started') {
      this.children.set(data.nodeId, data.childExecutionId);
      return true;
    }
    return false;
  }
}

/** A list of answered items (or iterations), each with its output, in order. */
function itemList(done, total, label) {
  const indexes = [...done.keys()].sort((a, b) => a - b);
  const count = total ?? (indexes.length ? indexes.at(-1) + 1 : 0);
  return el(
    'details',
    { class: 'node-io', dataset: { key: `items:${label}` } },
    el('summary', {}, `${label}s`),
    el(
      'ol',
      { class: 'execution-items' },
      Array.from({ length: count }, (_, index) =>
        el(
          'li',
          { dataset: { testid: 'execution-item', index: String(index), done: String(done.has(index)) } },
          el('span', { class: 'small' }, `${label} ${index + 1}: `),
          done.has(index) ? el('pre', {}, text(done.get(index))) : el('span', { class: 'small' }, 'not answered yet'),
        ),
      ),
    ),
  );
}

/** The elements a node's card adds for its kind and status (none for a plain prompt that ran). */
export function controlDetails(node, definition, state) {
  const parts = [];
  if (node.status === 'skipped')
    parts.push(el('p', { class: 'small', dataset: { testid: 'execution-node-skipped' } }, 'Skipped: no branch that was taken leads here.'));
  if (!definition) return parts;
  if ((definition.type === 'condition' || definition.type === 'router') && node.status === 'completed') {
    const branch = node.output?.branch ?? null;
    const to = branchesOf(definition).find((candidate) => candidate.name === branch)?.to ?? [];
    parts.push(
      el(
        'p',
        { dataset: { testid: 'execution-node-branch', branch: branch ?? '' } },
        branch === null
          ? 'No branch held: the nodes after it are skipped.'
          : ['Took branch ', el('strong', {}, `“${branch}”`), to.length ? ` → ${to.join(', ')}` : ''],
      ),
    );
  }
  const done = state.items.get(node.id) ?? new Map();
  if (definition.type === 'foreach' && (done.size || Array.isArray(node.output))) {
    const total = Array.isArray(node.output) ? node.output.length : undefined;
    parts.push(
      el(
        'p',
        { dataset: { testid: 'execution-node-items', done: String(done.size), total: total === undefined ? '' : String(total) } },
        total === undefined ? `${done.size} items answered so far` : `${done.size} of ${total} items answered`,
        ` · at most ${definition.concurrency ?? 3} at once`,
      ),
      itemList(done, total, 'Item'),
    );
  }
  if (definition.type === 'loop' && done.size)
    parts.push(
      el(
        'p',
        { dataset: { testid: 'execution-node-iterations', done: String(done.size) } },
        `Iteration ${done.size} of at most ${definition.maxIterations}`,
        node.status === 'completed' && done.size < definition.maxIterations ? ' (its stop condition held)' : '',
      ),
      itemList(done, undefined, 'Iteration'),
    );
  const child = state.children.get(node.id);
  if (definition.type === 'subflow' && child)
    parts.push(
      el(
        'p',
        {},
        el(
          'a',
          { href: `#/flows/${definition.flowId}/executions/${child}`, dataset: { testid: 'execution-node-child' } },
          'Its child execution',
        ),
      ),
    );
  return parts;
}
