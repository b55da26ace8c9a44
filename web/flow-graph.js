// An agentflow's graph as the form describes it (flows-page.js): one box per node in columns by
// depth (a node sits one column right of its deepest dependency, branches included), each box
// saying what its kind does, and the edges drawn between the boxes: a plain arrow for "runs after",
// a dashed one labelled with the branch's name for each branch of a condition or router. The boxes
// list their branches as text too, so the graph reads without the drawing. Nodes with a problem
// the API found are marked. Built with DOM calls (node fields are user text), never innerHTML.
import { el } from './blocks.js';
import { branchesOf, effectiveDeps, kindOf } from './flow-node-kinds.js';

const SVG = 'http://www.w3.org/2000/svg';
const svg = (tag, attributes = {}, ...children) => {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) if (value !== undefined) node.setAttribute(key, String(value));
  node.append(...children);
  return node;
};
const excerpt = (text, max = 90) => {
  const value = String(text ?? '');
  return value.length > max ? `${value.slice(0, max)}…` : value;
};
const KIND_BADGES = { condition: 'condition', router: 'router', foreach: 'for each', loop: 'loop', subflow: 'subflow' };

/** Nodes grouped in columns by depth. */
export function layers(nodes) {
  const deps = effectiveDeps(nodes);
  const depth = new Map();
  const depthOf = (id, seen = new Set()) => {
    if (depth.has(id)) return depth.get(id);
    if (seen.has(id) || !deps.has(id)) return 0;
    seen.add(id);
    const d = Math.max(-1, ...(deps.get(id) ?? []).map((dep) => depthOf(dep, seen))) + 1;
    depth.set(id, d);
    return d;
  };
  const columns = [];
  for (const node of nodes) (columns[depthOf(node.id)] ??= []).push(node);
  return columns.filter(Boolean);
}

/** The edges of the graph: `{from, to, branch?}`, a branch's edge once even when its target also runs after it. */
export function edgesOf(nodes) {
  const ids = new Set(nodes.map((node) => node.id));
  const edges = [];
  const branched = new Set();
  for (const node of nodes)
    for (const branch of branchesOf(node))
      for (const to of branch.to)
        if (ids.has(to)) {
          edges.push({ from: node.id, to, branch: branch.name });
          branched.add(`${node.id}\u0000${to}`);
        }
  for (const node of nodes)
    for (const from of node.dependsOn ?? [])
      if (ids.has(from) && !branched.has(`${from}\u0000${node.id}`)) edges.push({ from, to: node.id });
  return edges;
}

/** What a node does, in a line or two, by kind. */
function summary(node, flows) {
  switch (kindOf(node)) {
    case 'condition':
      return null;
    case 'router':
      return el('span', { class: 'small node-prompt' }, excerpt(node.prompt));
    case 'foreach':
      return [
        el('span', { class: 'small' }, `for each item of ${node.items || '…'} · ${node.concurrency ?? 3} at once`),
        el('span', { class: 'small node-prompt' }, excerpt(node.prompt)),
      ];
    case 'loop':
      return [
        el(
          'span',
          { class: 'small' },
          `up to ${node.maxIterations ?? '?'} iterations${node.until ? ` · until ${excerpt(node.until, 60)}` : ''}`,
        ),
        el('span', { class: 'small node-prompt' }, excerpt(node.prompt)),
      ];
    case 'subflow': {
      const flow = flows.find((candidate) => candidate.id === node.flowId);
      return el(
        'span',
        { class: 'small' },
        `runs ${flow ? `“${flow.name}”` : node.flowId || 'a flow (choose one)'}${node.version ? ` v${node.version}` : ''}`,
      );
    }
    case 'prompt':
      return [
        el('span', { class: 'small node-prompt' }, excerpt(node.prompt)),
        node.tools?.length ? el('span', { class: 'small' }, `tools: ${node.tools.join(', ')}`) : null,
      ];
    default:
      return el('span', { class: 'small' }, `a “${node.type}” node`);
  }
}

export class FlowGraph {
  constructor() {
    this.definition = { nodes: [] };
    this.flows = [];
    this.problems = new Set();
    this.root = el('div', { class: 'flow-graph', dataset: { testid: 'flow-graph' } });
    // The edges are drawn from where the boxes are, so again whenever the graph's size changes
    // (shown after being hidden, a narrower window, a longer prompt).
    this.resizes = new ResizeObserver(() => this.drawEdges());
    this.resizes.observe(this.root);
  }

  /** The owner's flows, to name a subflow's flow. */
  setFlows(flows) {
    this.flows = flows;
  }

  render(definition) {
    this.definition = definition ?? { nodes: [] };
    const nodes = this.definition.nodes ?? [];
    this.root.replaceChildren(
      ...layers(nodes).map((column) =>
        el(
          'div',
          { class: 'flow-column' },
          column.map((node) => this.box(node)),
        ),
      ),
    );
    this.drawEdges();
  }

  box(node) {
    const kind = kindOf(node);
    const branches = branchesOf(node);
    const conditions = new Map((node.type === 'condition' ? (node.branches ?? []) : []).map((branch) => [branch.name, branch.when]));
    return el(
      'div',
      {
        class: `flow-node kind-${kind}`,
        dataset: { testid: 'flow-node', nodeId: node.id, kind, invalid: String(this.problems.has(node.id)) },
        tabindex: '0',
        'aria-label': `Node ${node.id}${kind === 'prompt' ? '' : `, ${KIND_BADGES[kind] ?? kind}`}`,
      },
      el(
        'strong',
        {},
        node.id,
        kind !== 'prompt' ? el('span', { class: 'badge kind' }, KIND_BADGES[kind] ?? kind) : null,
        this.definition.output === node.id ? el('span', { class: 'badge' }, 'output') : null,
      ),
      node.dependsOn?.length ? el('span', { class: 'small' }, `after ${node.dependsOn.join(', ')}`) : null,
      summary(node, this.flows),
      branches.length
        ? el(
            'ul',
            { class: 'flow-branches' },
            branches.map((branch) =>
              el(
                'li',
                { dataset: { testid: 'flow-branch', branch: branch.name, to: branch.to.join(',') } },
                el('span', { class: 'branch-name' }, branch.name),
                conditions.get(branch.name) ? el('code', {}, excerpt(conditions.get(branch.name), 60)) : null,
                ` → ${branch.to.join(', ') || 'nothing'}`,
              ),
            ),
          )
        : null,
    );
  }

  /** Marks the nodes with a problem (their ids); the rest are clear. */
  markProblems(ids) {
    this.problems = new Set(ids);
    for (const box of this.root.querySelectorAll('[data-testid="flow-node"]'))
      box.dataset.invalid = String(this.problems.has(box.dataset.nodeId));
  }

  /** The edges as an SVG behind the boxes, from each box's right side to the next one's left. */
  drawEdges() {
    this.root.querySelector(':scope > svg')?.remove();
    if (!this.root.isConnected || this.root.offsetParent === null) return;
    const boxes = new Map([...this.root.querySelectorAll('[data-testid="flow-node"]')].map((box) => [box.dataset.nodeId, box]));
    const origin = this.root.getBoundingClientRect();
    const at = (box) => {
      const rect = box.getBoundingClientRect();
      const left = rect.left - origin.left + this.root.scrollLeft;
      const top = rect.top - origin.top + this.root.scrollTop;
      return { left, right: left + rect.width, top, height: rect.height };
    };
    const edges = edgesOf(this.definition.nodes ?? []).filter((edge) => boxes.has(edge.from) && boxes.has(edge.to));
    // A branching node's edges leave from points spread down its right side, one per edge.
    const outgoing = new Map();
    for (const edge of edges) outgoing.set(edge.from, [...(outgoing.get(edge.from) ?? []), edge]);
    const drawn = edges.map((edge) => {
      const from = at(boxes.get(edge.from));
      const to = at(boxes.get(edge.to));
      const siblings = outgoing.get(edge.from);
      const x1 = from.right;
      const y1 = from.top + (from.height * (siblings.indexOf(edge) + 1)) / (siblings.length + 1);
      const x2 = to.left;
      const y2 = to.top + to.height / 2;
      const bend = Math.max(24, Math.abs(x2 - x1) / 2);
      const path = svg('path', {
        d: `M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2},${y2}`,
        class: edge.branch ? 'edge branch' : 'edge',
        'marker-end': 'url(#flow-arrow)',
      });
      const label = edge.branch ? svg('text', { x: x1 + 6, y: y1 - 4, class: 'edge-label' }, document.createTextNode(edge.branch)) : null;
      return svg(
        'g',
        { 'data-testid': 'flow-edge', 'data-from': edge.from, 'data-to': edge.to, 'data-branch': edge.branch },
        path,
        ...(label ? [label] : []),
      );
    });
    const layer = svg(
      'svg',
      { class: 'flow-edges', width: this.root.scrollWidth, height: this.root.scrollHeight, 'aria-hidden': 'true' },
      svg(
        'defs',
        {},
        svg(
          'marker',
          { id: 'flow-arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
          svg('path', { d: 'M0,0 L10,5 L0,10 z', class: 'edge-arrow' }),
        ),
      ),
      ...drawn,
    );
    this.root.prepend(layer);
  }
}
