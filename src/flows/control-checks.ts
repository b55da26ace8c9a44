import { ExpressionError, parseExpression, pathsOf, type Expr } from './expression';
import { branchesOf, decisionsOf, ELSE_BRANCH, isBranching, kindOf, type FlowNode } from './node-kinds';

/**
 * The checks on save of an agentflow's control flow, each problem at its path in the request:
 * branches lead to nodes that exist, a node that depends on a condition or router is the target of
 * one of its branches (else nothing could ever reach it), expressions parse and read only the input
 * and ancestors, and a foreach's `items` is a list whenever the definition can tell.
 */

interface Problem {
  path: string;
  message: string;
}
type Prefix = (path: PropertyKey[]) => string;
type PathExpr = Extract<Expr, { kind: 'path' }>;

/** Where an expression sits in a node, for the paths of its problems. */
function expressionsOf(node: FlowNode): Array<{ at: PropertyKey[]; source: string; locals: string[] }> {
  if (node.type === 'condition')
    return node.branches.map((branch, j) => ({ at: ['branches', j, 'when'], source: branch.when, locals: [] }));
  if (node.type === 'loop' && node.until) return [{ at: ['until'], source: node.until, locals: ['output', 'iteration'] }];
  if (node.type === 'foreach') return [{ at: ['items'], source: node.items, locals: [] }];
  return [];
}

/** The input keys a node's expressions and `items` read (`input.<key>…`). */
export function expressionInputKeys(node: FlowNode): string[] {
  const keys: string[] = [];
  for (const { source } of expressionsOf(node)) {
    let tree: Expr;
    try {
      tree = parseExpression(source);
    } catch {
      continue;
    }
    for (const path of pathsOf(tree)) if (path.parts[0] === 'input' && typeof path.parts[1] === 'string') keys.push(path.parts[1]);
  }
  return keys;
}

/** A foreach's `items` as a path (it must be one). */
export function itemsPath(node: Extract<FlowNode, { type: 'foreach' }>): PathExpr | null {
  try {
    const tree = parseExpression(node.items);
    return tree.kind === 'path' ? tree : null;
  } catch {
    return null;
  }
}

export function controlProblems(
  definition: { nodes: FlowNode[] },
  firstIndex: ReadonlyMap<string, number>,
  prefix: Prefix,
): { references: Problem[]; afterCycles: (ancestors: ReadonlyMap<string, ReadonlySet<string>>) => Problem[] } {
  const references: Problem[] = [];
  const byId = new Map(definition.nodes.map((node) => [node.id, node]));
  definition.nodes.forEach((node, index) => {
    // A human_input's decisions are checked like branches, whether or not they lead anywhere.
    if (node.type !== 'human_input' && !isBranching(node)) return;
    const field = node.type === 'human_input' ? 'decisions' : 'branches';
    const named: Array<{ name: string; to?: string[] }> = node.type === 'human_input' ? decisionsOf(node) : node.branches;
    const targetOf = new Map<string, string>();
    const names = new Set<string>();
    named.forEach((branch, j) => {
      if (names.has(branch.name) || (node.type === 'condition' && branch.name === ELSE_BRANCH))
        references.push({
          path: prefix(['nodes', index, field, j, 'name']),
          message: branch.name === ELSE_BRANCH ? `"${ELSE_BRANCH}" is the name of the else branch` : `"${branch.name}" names two ${field}`,
        });
      names.add(branch.name);
    });
    const lists = [
      ...named.map((branch, j) => ({ at: [field, j, 'to'] as PropertyKey[], name: branch.name, to: branch.to ?? [] })),
      ...(node.type === 'condition' && node.else ? [{ at: ['else'] as PropertyKey[], name: ELSE_BRANCH, to: node.else }] : []),
    ];
    for (const list of lists)
      list.to.forEach((target, k) => {
        const path = prefix(['nodes', index, ...list.at, k]);
        if (!firstIndex.has(target))
          references.push({ path, message: `branch "${list.name}" leads to a missing node: no node has the id "${target}"` });
        else if (target === node.id) references.push({ path, message: 'a branch cannot lead back to its own node' });
        else if (targetOf.has(target))
          references.push({ path, message: `"${target}" is already the target of branch "${targetOf.get(target)}"` });
        else targetOf.set(target, list.name);
      });
  });
  // A node that depends on a branching node runs only when a branch leads to it.
  definition.nodes.forEach((node, index) => {
    (node.dependsOn ?? []).forEach((parent, at) => {
      const source = byId.get(parent);
      if (!source || !isBranching(source)) return;
      if (branchesOf(source).some((branch) => branch.to.includes(node.id))) return;
      references.push({
        path: prefix(['nodes', index, 'dependsOn', at]),
        message: `"${node.id}" is unreachable: no branch of ${kindOf(source)} "${parent}" leads to it (name it in one of its branches' "to")`,
      });
    });
  });

  const afterCycles = (ancestors: ReadonlyMap<string, ReadonlySet<string>>): Problem[] => {
    const problems: Problem[] = [];
    definition.nodes.forEach((node, index) => {
      for (const { at, source, locals } of expressionsOf(node)) {
        const path = prefix(['nodes', index, ...at]);
        let tree: Expr;
        try {
          tree = parseExpression(source);
        } catch (error) {
          problems.push({ path, message: `not a valid expression: ${error instanceof ExpressionError ? error.message : 'invalid'}` });
          continue;
        }
        if (node.type === 'foreach' && tree.kind !== 'path') {
          problems.push({ path, message: 'items must be a path to a list: input.<key>… or nodes.<id>.output…' });
          continue;
        }
        for (const read of pathsOf(tree)) {
          const problem = pathProblem(read, locals, ancestors.get(node.id) ?? new Set(), byId);
          if (problem) problems.push({ path, message: problem });
        }
        if (node.type === 'foreach' && tree.kind === 'path') {
          const notList = knownNotList(tree, byId);
          if (notList) problems.push({ path, message: `foreach over a value that is not a list: ${notList}` });
        }
      }
    });
    return problems;
  };
  return { references, afterCycles };
}

/** What is wrong with a path an expression reads, or null. */
function pathProblem(
  read: PathExpr,
  locals: readonly string[],
  ancestors: ReadonlySet<string>,
  byId: ReadonlyMap<string, FlowNode>,
): string | null {
  const [root, second, third] = read.parts;
  if (typeof root === 'string' && locals.includes(root)) return null;
  if (root === 'input') return typeof second === 'string' ? null : `${read.text}: name an input key (input.<key>)`;
  if (root === 'nodes') {
    if (typeof second !== 'string' || third !== 'output') return `${read.text}: read a node's output as nodes.<id>.output`;
    if (!byId.has(second)) return `${read.text} names no node`;
    if (!ancestors.has(second)) return `${read.text} reads "${second}", which is not an ancestor of this node: add it to dependsOn`;
    return null;
  }
  const allowed = ['input.<key>', 'nodes.<id>.output', ...locals].join(', ');
  return `${read.text}: unknown name "${String(root)}" (use ${allowed})`;
}

/** Why the value at a `nodes.<id>.output…` path is surely not a list, or null when it may be one. */
function knownNotList(read: PathExpr, byId: ReadonlyMap<string, FlowNode>): string | null {
  if (read.parts[0] !== 'nodes') return null;
  const source = byId.get(String(read.parts[1]));
  if (!source) return null;
  const rest = read.parts.slice(3);
  switch (source.type) {
    case 'condition':
    case 'router':
      return `"${source.id}" answers {branch}, the name of the branch it took`;
    case 'subflow':
    case 'foreach':
      return null;
    case 'human_input': {
      if (rest[0] !== 'values') return `"${source.id}" answers {values, decision, answeredBy, timedOut}; read a list in its values`;
      const type = source.form ? schemaAt(source.form, rest.slice(1))?.type : undefined;
      if (type === undefined) return null;
      const types = Array.isArray(type) ? type : [type];
      return types.includes('array') ? null : `its form makes ${read.text} ${types.join(' or ')}, not an array`;
    }
    default: {
      if (!source.outputSchema) return `"${source.id}" answers text; give it an outputSchema whose value there is an array`;
      const schema = schemaAt(source.outputSchema, rest);
      const type = schema?.type;
      if (type === undefined) return null;
      const types = Array.isArray(type) ? type : [type];
      return types.includes('array') ? null : `its outputSchema makes ${read.text} ${types.join(' or ')}, not an array`;
    }
  }
}

/** The sub-schema of a JSON Schema at a value path (through `properties` and `items`), or null when it cannot tell. */
function schemaAt(schema: Record<string, unknown>, parts: ReadonlyArray<string | number>): Record<string, unknown> | null {
  let at: unknown = schema;
  for (const part of parts) {
    if (at === null || typeof at !== 'object') return null;
    const node = at as Record<string, unknown>;
    if (typeof part === 'number') at = node.items;
    else at = (node.properties as Record<string, unknown> | undefined)?.[part];
    if (at === undefined) return null;
  }
  return at !== null && typeof at === 'object' ? (at as Record<string, unknown>) : null;
}
