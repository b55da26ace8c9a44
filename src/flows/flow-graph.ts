import type { FlowExecutionNodeRow } from '../models/schema';
import { effectiveDeps, isBranching, takenTargets, type FlowNode } from './node-kinds';

/**
 * Which pending nodes of an execution run next and which are skipped. A node waits until each
 * node it depends on is `completed` or `skipped`; it then runs when at least one of those edges is
 * live (the node completed, and when it is a condition or router, its taken branch leads here),
 * else it is skipped, and so is everything only reachable through it (in the same pass).
 */
export function nextSteps(
  nodes: readonly FlowNode[],
  rows: ReadonlyArray<Pick<FlowExecutionNodeRow, 'nodeId' | 'status' | 'output'>>,
): { ready: string[]; skip: string[] } {
  const deps = effectiveDeps(nodes);
  const byId = new Map(nodes.map((node) => [node.id, node]));
  const status = new Map(rows.map((row) => [row.nodeId, row.status as string]));
  const output = new Map(rows.map((row) => [row.nodeId, row.output]));
  const ready: string[] = [];
  const skip: string[] = [];
  for (let changed = true; changed;) {
    changed = false;
    for (const node of nodes) {
      if (status.get(node.id) !== 'pending' || ready.includes(node.id)) continue;
      const parents = deps.get(node.id) ?? [];
      if (!parents.every((parent) => status.get(parent) === 'completed' || status.get(parent) === 'skipped')) continue;
      const live =
        parents.length === 0 ||
        parents.some((parent) => {
          if (status.get(parent) !== 'completed') return false;
          const source = byId.get(parent)!;
          return !isBranching(source) || takenTargets(source, output.get(parent)).includes(node.id);
        });
      if (live) ready.push(node.id);
      else {
        skip.push(node.id);
        status.set(node.id, 'skipped');
        changed = true;
      }
    }
  }
  return { ready, skip };
}
