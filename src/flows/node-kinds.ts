import { z } from 'zod';
import { modelRefSchema } from '../schemas/model-ref';
import { MAX_EXPRESSION_CHARS } from './expression';

/**
 * The control-flow nodes of an agentflow beside its prompt nodes: a `condition` and a `router`
 * choose branches, a `foreach` runs its prompt once per element of a list, a `loop` repeats its
 * prompt up to a bound, a `subflow` runs another agentflow of the same owner as a child execution,
 * a `human_input` asks people for a form's answer and may route on their decision.
 * The graph stays acyclic: a loop repeats inside its node, never along an edge.
 */

export const MAX_FLOW_NODES = 50;
export const MAX_NODE_PROMPT_CHARS = 8_000;
/** A node id: also part of its job id and of `{{nodes.<id>.output}}`, so plain characters only. */
export const NODE_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
/** Branches of one condition or router. */
export const MAX_BRANCHES = 10;
/** The most a `foreach` may run over; a longer list fails the node (`too_many_items`). */
export const MAX_FOREACH_ITEMS = 100;
/** The most item jobs of one `foreach` that run at once. */
export const MAX_FOREACH_CONCURRENCY = 10;
export const DEFAULT_FOREACH_CONCURRENCY = 3;
/** The highest bound a `loop` may set. */
export const MAX_LOOP_ITERATIONS = 20;
/** How deep subflows may nest (a flow running a flow running a flow…); deeper fails the node. */
export const MAX_SUBFLOW_DEPTH = 3;
/** The branch a condition takes when none of its `when`s holds. */
export const ELSE_BRANCH = 'else';
/** People one human_input node may ask. */
export const MAX_INPUT_RECIPIENTS = 20;
/** How long a human_input node waits for its answer unless it says otherwise, and the bounds it may set. */
export const DEFAULT_INPUT_TIMEOUT_SECONDS = 24 * 3600;
export const MIN_INPUT_TIMEOUT_SECONDS = 60;
export const MAX_INPUT_TIMEOUT_SECONDS = 30 * 24 * 3600;
/** What a human_input node does when its time is over: fail, take its default answer, or take a decision. */
export const INPUT_TIMEOUT_OUTCOMES = ['fail', 'default', 'decision'] as const;

const nodeId = z.string().regex(NODE_ID_PATTERN, 'letters, digits, _ and - only (1-64)');
const dependsOn = z.array(z.string().max(64)).max(MAX_FLOW_NODES).optional();
const prompt = z.string().min(1).max(MAX_NODE_PROMPT_CHARS);
const branchName = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'letters, digits, _ and - only (1-64)');
const targets = z.array(z.string().max(64)).min(1).max(MAX_FLOW_NODES);
const expression = z.string().trim().min(1).max(MAX_EXPRESSION_CHARS);
const outputSchema = z.record(z.string(), z.unknown()).optional();

export const promptNodeSchema = z.strictObject({
  id: nodeId,
  type: z.literal('prompt').optional(),
  prompt,
  model: modelRefSchema.optional(),
  dependsOn,
  /** A JSON Schema the node's answer must satisfy (it is then JSON, not text). */
  outputSchema,
  /** Tools the node's model may call: device tool names and names of the flow's `httpTools`. */
  tools: z.array(z.string().max(64)).max(20).optional(),
});

/** Takes the first branch whose `when` holds (else the `else` targets); the others' targets are skipped. */
export const conditionNodeSchema = z.strictObject({
  id: nodeId,
  type: z.literal('condition'),
  dependsOn,
  branches: z
    .array(z.strictObject({ name: branchName, when: expression, to: targets }))
    .min(1)
    .max(MAX_BRANCHES),
  else: targets.optional(),
});

/** The model picks one branch by name, from their names and descriptions and the node's prompt. */
export const routerNodeSchema = z.strictObject({
  id: nodeId,
  type: z.literal('router'),
  prompt,
  model: modelRefSchema.optional(),
  dependsOn,
  branches: z
    .array(z.strictObject({ name: branchName, description: z.string().trim().min(1).max(500).optional(), to: targets }))
    .min(2)
    .max(MAX_BRANCHES),
});

/** Its prompt once per element of `items` (`{{item}}`, `{{index}}`), in parallel up to `concurrency`; its output is the list of answers in order. */
export const foreachNodeSchema = z.strictObject({
  id: nodeId,
  type: z.literal('foreach'),
  /** A path to a list: `input.<key>…` or `nodes.<id>.output…`. */
  items: z.string().trim().min(1).max(200),
  prompt,
  model: modelRefSchema.optional(),
  dependsOn,
  outputSchema,
  concurrency: z.number().int().min(1).max(MAX_FOREACH_CONCURRENCY).default(DEFAULT_FOREACH_CONCURRENCY),
});

/** Its prompt again and again (`{{loop.previous}}`, `{{loop.iteration}}`) until `until` holds, at most `maxIterations` times; its output is the last answer. */
export const loopNodeSchema = z.strictObject({
  id: nodeId,
  type: z.literal('loop'),
  prompt,
  model: modelRefSchema.optional(),
  dependsOn,
  outputSchema,
  maxIterations: z
    .number({
      error: (issue) => (issue.input === undefined ? `a loop needs its bound: maxIterations (1-${MAX_LOOP_ITERATIONS})` : undefined),
    })
    .int()
    .min(1)
    .max(MAX_LOOP_ITERATIONS),
  /** Over `output` (this iteration's answer) and `iteration` (1, 2, …) besides the input and ancestors. */
  until: expression.optional(),
});

/** A decision button: a name (the branch), the text it shows, and the nodes it leads to. */
const decisionSchema = z.union([
  branchName,
  z.strictObject({
    name: branchName,
    /** The button's text (default: its name). */
    label: z.string().trim().min(1).max(100).optional(),
    /** The nodes this decision leads to; the other decisions' targets are skipped. */
    to: targets.optional(),
  }),
]);

/**
 * Asks people for a form's answer and waits (on a waitpoint, no worker held) until one of them
 * answers or its time is over. Its output is `{values, decision, answeredBy, timedOut}`; decisions
 * with `to` route the flow as a router's branches do.
 */
export const humanInputNodeSchema = z.strictObject({
  id: nodeId,
  type: z.literal('human_input'),
  dependsOn,
  /** What the recipients read above the form: a template over the input and ancestors' outputs. */
  prompt: prompt.optional(),
  /** The form as a JSON Schema of an object (its properties are the fields); none: no fields. */
  form: z.record(z.string(), z.unknown()).optional(),
  /** Who may answer, by user id or email: the flow's owner (the default) or users who share a canvas with them. */
  recipients: z.array(z.string().trim().min(1).max(320)).min(1).max(MAX_INPUT_RECIPIENTS).optional(),
  /** Decision buttons (a string is a button of that name, leading nowhere). */
  decisions: z.array(decisionSchema).min(1).max(MAX_BRANCHES).optional(),
  timeout: z
    .strictObject({
      seconds: z.number().int().min(MIN_INPUT_TIMEOUT_SECONDS).max(MAX_INPUT_TIMEOUT_SECONDS),
      outcome: z.enum(INPUT_TIMEOUT_OUTCOMES).default('fail'),
      /** `default`: the answer's values. */
      values: z.record(z.string(), z.unknown()).optional(),
      /** `decision`, or `default` on a node with decisions: the decision taken. */
      decision: branchName.optional(),
    })
    .optional(),
});

/** Runs another agentflow of the owner as a child execution; its output is the child's. */
export const subflowNodeSchema = z.strictObject({
  id: nodeId,
  type: z.literal('subflow'),
  flowId: z.uuid(),
  /** The child's version to run (default: its published one). */
  version: z.number().int().min(1).max(2_147_483_647).optional(),
  /** The child's input, each value a template over the input and ancestors' outputs. */
  input: z.record(z.string().regex(/^[A-Za-z0-9_-]{1,64}$/), z.string().max(MAX_NODE_PROMPT_CHARS)).default({}),
  dependsOn,
});

export const flowNodeSchema = z.discriminatedUnion('type', [
  promptNodeSchema,
  conditionNodeSchema,
  routerNodeSchema,
  foreachNodeSchema,
  loopNodeSchema,
  subflowNodeSchema,
  humanInputNodeSchema,
]);

export type PromptNode = z.output<typeof promptNodeSchema>;
export type ConditionNode = z.output<typeof conditionNodeSchema>;
export type RouterNode = z.output<typeof routerNodeSchema>;
export type ForeachNode = z.output<typeof foreachNodeSchema>;
export type LoopNode = z.output<typeof loopNodeSchema>;
export type SubflowNode = z.output<typeof subflowNodeSchema>;
export type HumanInputNode = z.output<typeof humanInputNodeSchema>;
export type FlowNode = z.output<typeof flowNodeSchema>;
export type NodeKind = 'prompt' | 'condition' | 'router' | 'foreach' | 'loop' | 'subflow' | 'human_input';

export const kindOf = (node: Pick<FlowNode, 'type'>): NodeKind => node.type ?? 'prompt';
export const isPromptNode = (node: FlowNode): node is PromptNode => kindOf(node) === 'prompt';
/** Nodes that send a prompt of their own to a model (a human_input's prompt is for people). */
export const hasPrompt = (node: FlowNode): node is PromptNode | RouterNode | ForeachNode | LoopNode =>
  node.type !== 'human_input' && 'prompt' in node && typeof node.prompt === 'string';
/** A node that chooses which of its targets run: a condition, a router, a human_input whose decisions lead somewhere. */
export type BranchingNode = ConditionNode | RouterNode | HumanInputNode;
export const isBranching = (node: FlowNode): node is BranchingNode =>
  node.type === 'condition' || node.type === 'router' || (node.type === 'human_input' && decisionsOf(node).some((d) => d.to));

/** A human_input node's decisions as objects (a decision given as a string is one of that name, leading nowhere). */
export function decisionsOf(node: Pick<HumanInputNode, 'decisions'>): Array<{ name: string; label?: string; to?: string[] }> {
  return (node.decisions ?? []).map((decision) => (typeof decision === 'string' ? { name: decision } : decision));
}

/** A branching node's branches by name with their targets (a condition's `else` as {@link ELSE_BRANCH}, a human_input's decisions). */
export function branchesOf(node: BranchingNode): Array<{ name: string; to: string[] }> {
  if (node.type === 'human_input') return decisionsOf(node).map((decision) => ({ name: decision.name, to: decision.to ?? [] }));
  const named = node.branches.map((branch) => ({ name: branch.name, to: branch.to }));
  return node.type === 'condition' && node.else ? [...named, { name: ELSE_BRANCH, to: node.else }] : named;
}

/** The targets a completed branching node took, from its output `{branch}` (a human_input's `{decision}`). */
export function takenTargets(node: BranchingNode, output: unknown): string[] {
  const taken = output as { branch?: unknown; decision?: unknown } | null;
  const branch = node.type === 'human_input' ? taken?.decision : taken?.branch;
  return branchesOf(node).find((candidate) => candidate.name === branch)?.to ?? [];
}

/** Each node's dependencies: its `dependsOn` and every branching node with a branch to it. */
export function effectiveDeps(nodes: readonly FlowNode[]): Map<string, string[]> {
  const deps = new Map(nodes.map((node) => [node.id, [...(node.dependsOn ?? [])]]));
  for (const node of nodes) {
    if (!isBranching(node)) continue;
    for (const branch of branchesOf(node))
      for (const target of branch.to) {
        const list = deps.get(target);
        if (list && !list.includes(node.id)) list.push(node.id);
      }
  }
  return deps;
}
