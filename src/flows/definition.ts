import { z } from 'zod';
import { isDeviceToolName } from '../turns/tool-contract';
import { isMcpToolName } from '../mcp/mcp-tool-names';
import { AppError } from '../lib/errors';
import { UNTRUSTED_DATA_RULE } from '../lib/untrusted-data';
import { modelRefSchema } from '../schemas/model-ref';
import { SEARCH_KNOWLEDGE } from '../knowledge/retrieval';
import {
  effectiveDeps,
  flowNodeSchema,
  hasPrompt,
  isPromptNode,
  MAX_FLOW_NODES,
  MAX_NODE_PROMPT_CHARS,
  NODE_ID_PATTERN,
  promptNodeSchema,
  type FlowNode,
  type PromptNode,
} from './node-kinds';
import { controlProblems, expressionInputKeys } from './control-checks';
import { REGEX_KEYWORDS, regexKeyword } from './schema-keywords';
import { humanInputProblems, withFieldOrder } from './input-form';

export { MAX_FLOW_NODES, MAX_NODE_PROMPT_CHARS, NODE_ID_PATTERN, REGEX_KEYWORDS, regexKeyword };
export type { FlowNode };

/**
 * Flow definitions: their shapes, and the checks a shape cannot state (a DAG with known
 * references and templates that only read ancestors). Every problem is a 400 whose `details` name
 * its path from the request body (`definition.nodes.2.dependsOn.0`).
 */

export const MAX_SYSTEM_PROMPT_CHARS = 8_000;
/** An `outputSchema` as JSON text: generous for a JSON Schema, small against a 1 MB body of one. */
export const MAX_OUTPUT_SCHEMA_CHARS = 20_000;
/** Nesting of a definition (an `outputSchema` is the deep part): PostgreSQL's jsonb and the schema builder recurse. */
export const MAX_DEFINITION_DEPTH = 32;
/** An input key as templates name it. */
export const INPUT_KEY_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
/** `{{…}}` references one prompt may hold: each copies an input or an output into the model request. */
export const MAX_TEMPLATE_REFS = 20;
/** The whole `input` of an execution as JSON text. */
export const MAX_INPUT_CHARS = 32_000;
/** A node's prompt once its references are filled: what one model request may carry. */
export const MAX_RENDERED_PROMPT_CHARS = 64_000;
/**
 * A node's output as stored, streamed and passed on: a longer text answer is cut and ends with
 * {@link TRUNCATED_MARK}; a longer JSON answer does not validate (it is never parsed).
 */
export const MAX_NODE_OUTPUT_CHARS = 16_000;
/** The end of a text output that was cut to {@link MAX_NODE_OUTPUT_CHARS}. */
export const TRUNCATED_MARK = '\n[output truncated]';
/** Knowledge bases one chatflow may search. */
export const MAX_KNOWLEDGE_BASES = 10;
/** Tools one node may offer its model. */
export const MAX_NODE_TOOLS = 20;
/** HTTP tools one flow may define, and origins it may allow. */
export const MAX_HTTP_TOOLS = 20;
export const MAX_ALLOWED_ORIGINS = 20;
/** An HTTP tool's name, as the model calls it. */
export const HTTP_TOOL_NAME_PATTERN = /^[a-z][a-z0-9_]{0,63}$/;

export const chatflowDefinitionSchema = z.strictObject({
  systemPrompt: z.string().trim().min(1).max(MAX_SYSTEM_PROMPT_CHARS),
  model: modelRefSchema.optional(),
  temperature: z.number().min(0).max(2).optional(),
  historyWindow: z.number().int().min(1).max(100).default(20),
  /**
   * Knowledge bases of the flow's owner the flow answers from: each user message is searched there
   * first, and the answer cites the passages it used. Another user's base finds nothing.
   */
  knowledge: z
    .strictObject({
      baseIds: z.array(z.uuid()).min(1).max(MAX_KNOWLEDGE_BASES),
      limit: z.number().int().min(1).max(10).default(5),
    })
    .optional(),
});
export type ChatflowDefinition = z.output<typeof chatflowDefinitionSchema>;

/**
 * The system prompt of every agentflow node. Its first sentence is how the offline demo model
 * recognises a node (src/demo-model/flow-node.ts).
 */
export const FLOW_NODE_SYSTEM = `You are one step of a Switchboard agentflow. Do exactly the task in the next message and answer with the result only: it is passed on as it is. ${UNTRUSTED_DATA_RULE}`;
/** Appended when the node has an `outputSchema`; the demo model answers JSON when it sees it. */
export const FLOW_JSON_INSTRUCTION = 'Answer with JSON only (no prose, no code fence) that validates against this JSON Schema:';

/** The system prompt of a node without tools: the node prompt, and the JSON instruction with the node's `outputSchema`. */
export function nodeSystemPrompt(node: Pick<AgentflowNode, 'outputSchema'>): string {
  return node.outputSchema ? `${FLOW_NODE_SYSTEM}\n\n${FLOW_JSON_INSTRUCTION}\n${JSON.stringify(node.outputSchema)}` : FLOW_NODE_SYSTEM;
}

/** A prompt node: one model turn (with tools, when it lists some). */
export const agentflowNodeSchema = promptNodeSchema;
export type AgentflowNode = PromptNode;

/**
 * An origin as `URL.origin` writes it (and a browser sends it in `Origin`): http(s), host and port
 * only, no path or trailing slash. Flows' HTTP tools and embeds' allowed origins both take it.
 */
export const webOriginSchema = (maxLength: number) =>
  z
    .string()
    .max(maxLength)
    .refine((value) => {
      try {
        const url = new URL(value);
        return (url.protocol === 'http:' || url.protocol === 'https:') && url.origin === value;
      } catch {
        return false;
      }
    }, 'must be an origin such as https://shop.example.com (scheme, host and port only, no path or trailing slash)');

const originSchema = webOriginSchema(300);

/**
 * An HTTP endpoint a node may call: a fixed method and URL (whose origin must be allowed); the
 * model only chooses query parameters and, for POST, the body.
 */
export const httpToolSchema = z.strictObject({
  name: z.string().regex(HTTP_TOOL_NAME_PATTERN, 'lowercase letters, digits and _ only, starting with a letter (1-64)'),
  description: z.string().trim().min(1).max(500),
  method: z.enum(['GET', 'POST']),
  url: z.url({ protocol: /^https?$/ }).max(2_000),
  /** The owner's credential (`PUT /http-credentials/:name`) sent with every call, by name. */
  credential: z.string().regex(HTTP_TOOL_NAME_PATTERN, 'the name of one of your credentials').optional(),
});
export type HttpTool = z.output<typeof httpToolSchema>;

export const agentflowDefinitionSchema = z.strictObject({
  nodes: z.array(flowNodeSchema).min(1).max(MAX_FLOW_NODES),
  output: z.string().min(1).max(64),
  /** What the flow does, for the people and models that pick it (its MCP tool's description). */
  description: z.string().trim().min(1).max(1_000).optional(),
  /** The owner's device that device tools run on. */
  deviceId: z.string().min(1).max(128).optional(),
  httpTools: z.array(httpToolSchema).max(MAX_HTTP_TOOLS).optional(),
  /** The only origins HTTP tools may reach. */
  allowedOrigins: z.array(originSchema).max(MAX_ALLOWED_ORIGINS).optional(),
});
export type AgentflowDefinition = z.output<typeof agentflowDefinitionSchema>;

export const FLOW_TYPES = ['chatflow', 'agentflow'] as const;
export type FlowDefinition = ChatflowDefinition | AgentflowDefinition;

export const createFlowSchema = z.strictObject({
  type: z.enum(FLOW_TYPES),
  name: z.string().trim().min(1).max(200),
  /** Checked by `validateDefinition` for the flow's type (a union would blur the paths of problems). */
  definition: z.record(z.string(), z.unknown()),
});
export const updateFlowSchema = z
  .strictObject({
    name: z.string().trim().min(1).max(200).optional(),
    definition: z.record(z.string(), z.unknown()).optional(),
    /** With a `definition`: publish the new version at once (the default), or keep it as a draft. */
    publish: z.boolean().optional(),
  })
  .refine((body) => body.name !== undefined || body.definition !== undefined, 'Give at least one of name, definition')
  .refine((body) => body.publish === undefined || body.definition !== undefined, {
    message: '`publish` applies to a new definition only',
    path: ['publish'],
  });

/** A flow version number in a path (`/flows/:id/versions/:version`). */
export const flowVersionParam = z.coerce.number().int().min(1).max(2_147_483_647);

/** `POST /flows/:id/execute {input}`: the values templates read as `{{input.<key>}}`. */
export const executeFlowSchema = z.strictObject({
  input: z.record(z.string().regex(INPUT_KEY_PATTERN, 'letters, digits, _ and - only (1-64)'), z.unknown()).default({}),
  /** Run this saved version instead of the published one (to try a draft). */
  version: z.number().int().min(1).max(2_147_483_647).optional(),
});

export interface Problem {
  path: string;
  message: string;
}

/** Whether a `{provider, model}` is one this deployment serves. */
export type ModelCheck = (ref: { provider: string; model: string }) => boolean;

/** 400 `validation_failed` with the problems' paths. */
function invalid(problems: Problem[]): AppError {
  return new AppError(400, 'validation_failed', `Invalid flow definition: ${problems[0].path}: ${problems[0].message}`, problems);
}

/**
 * The definition of a flow of `type`, parsed and checked; throws 400 (`validation_failed`, or
 * `unknown_model` for a model not configured) with every problem's path under `at`.
 */
export function validateDefinition(
  type: (typeof FLOW_TYPES)[number],
  value: unknown,
  knows: ModelCheck,
  at = 'definition',
): FlowDefinition {
  const prefix = (path: PropertyKey[]) => [at, ...path.map(String)].filter(Boolean).join('.');
  const deep = tooDeep(value, MAX_DEFINITION_DEPTH);
  if (deep !== null) throw invalid([{ path: prefix(deep), message: `nested more than ${MAX_DEFINITION_DEPTH} levels deep` }]);
  if (type === 'chatflow') {
    const parsed = chatflowDefinitionSchema.safeParse(value);
    if (!parsed.success) throw invalid(parsed.error.issues.map((issue) => ({ path: prefix(issue.path), message: issue.message })));
    checkModels([{ path: prefix(['model']), ref: parsed.data.model }], knows);
    return parsed.data;
  }
  const parsed = agentflowDefinitionSchema.safeParse(withNodeAliases(value));
  if (!parsed.success) throw invalid(parsed.error.issues.map((issue) => ({ path: prefix(issue.path), message: issue.message })));
  const definition = parsed.data;
  const problems = graphProblems(definition, prefix);
  if (problems.length) throw invalid(problems);
  checkModels(
    definition.nodes.map((node, index) => ({ path: prefix(['nodes', index, 'model']), ref: 'model' in node ? node.model : undefined })),
    knows,
  );
  return definition;
}

/** Node types also accepted under another name: `input` is a `human_input` (stored under that name). */
const NODE_TYPE_ALIASES: Record<string, string> = { input: 'human_input' };

/**
 * The definition as it is stored: aliased node types under their own names, and a human_input's
 * form with the order of its fields written down (anything else as it is).
 */
function withNodeAliases(value: unknown): unknown {
  const nodes = (value as { nodes?: unknown } | null)?.nodes;
  if (!Array.isArray(nodes)) return value;
  const renamed = nodes.map((node: unknown) => {
    if (node === null || typeof node !== 'object') return node;
    const { type } = node as { type?: unknown };
    const kind = typeof type === 'string' && Object.hasOwn(NODE_TYPE_ALIASES, type) ? NODE_TYPE_ALIASES[type] : type;
    if (kind !== 'human_input') return node;
    const { form } = node as { form?: unknown };
    return { ...node, type: kind, ...(form === undefined ? {} : { form: withFieldOrder(form) }) };
  });
  return { ...(value as object), nodes: renamed };
}

function checkModels(refs: Array<{ path: string; ref?: { provider: string; model: string } }>, knows: ModelCheck): void {
  const unknown = refs.filter((entry) => entry.ref && !knows(entry.ref));
  if (!unknown.length) return;
  const problems = unknown.map(({ path, ref }) => ({ path, message: `${ref!.provider}:${ref!.model} is not a configured model` }));
  throw new AppError(400, 'unknown_model', `${problems[0].path}: ${problems[0].message}`, problems);
}

/** The path where `value` nests deeper than `max` levels of objects and arrays, or null. */
export function tooDeep(value: unknown, max: number, path: PropertyKey[] = []): PropertyKey[] | null {
  if (value === null || typeof value !== 'object') return null;
  if (path.length >= max) return path;
  for (const [key, item] of Object.entries(value)) {
    const found = tooDeep(item, max, [...path, key]);
    if (found) return found;
  }
  return null;
}

/**
 * One `{{…}}` of a prompt: an input key, a node's output, or what only a foreach's prompt
 * (`{{item}}`, `{{index}}`) or a loop's (`{{loop.previous}}`, `{{loop.iteration}}`) reads.
 */
export type TemplateRef =
  | { kind: 'input'; key: string; text: string }
  | { kind: 'node'; id: string; text: string }
  | { kind: 'local'; name: LocalName; text: string };
export type LocalName = 'item' | 'index' | 'loop.previous' | 'loop.iteration';
/** Values a foreach's or loop's prompt reads besides the input and outputs. */
export type PromptLocals = Partial<Record<LocalName, unknown>>;

const TEMPLATE = /\{\{([^{}]*)\}\}/g;
const INPUT_REF = /^\s*input\.([A-Za-z0-9_-]{1,64})\s*$/;
const NODE_REF = /^\s*nodes\.([A-Za-z0-9_-]{1,64})\.output\s*$/;
const LOCAL_REF = /^\s*(item|index|loop\.previous|loop\.iteration)\s*$/;

/** The template references of a prompt, in order; `bad` holds expressions that are none of them. */
export function templateRefs(prompt: string): { refs: TemplateRef[]; bad: string[] } {
  const refs: TemplateRef[] = [];
  const bad: string[] = [];
  for (const match of prompt.matchAll(TEMPLATE)) {
    const input = INPUT_REF.exec(match[1]);
    const node = NODE_REF.exec(match[1]);
    const local = LOCAL_REF.exec(match[1]);
    if (input) refs.push({ kind: 'input', key: input[1], text: match[0] });
    else if (node) refs.push({ kind: 'node', id: node[1], text: match[0] });
    else if (local) refs.push({ kind: 'local', name: local[1] as LocalName, text: match[0] });
    else bad.push(match[0]);
  }
  return { refs, bad };
}

/** The templates of a node: its prompt, or a subflow's input values. */
export function nodeTemplates(node: FlowNode): string[] {
  if (hasPrompt(node)) return [node.prompt];
  if (node.type === 'human_input') return node.prompt ? [node.prompt] : [];
  if (node.type === 'subflow') return Object.values(node.input);
  return [];
}

/** Every input key the definition reads (`{{input.<key>}}`, and `input.<key>` in expressions and `items`), sorted. */
export function inputKeys(definition: AgentflowDefinition): string[] {
  const keys = new Set<string>();
  for (const node of definition.nodes) {
    for (const template of nodeTemplates(node)) for (const ref of templateRefs(template).refs) if (ref.kind === 'input') keys.add(ref.key);
    for (const key of expressionInputKeys(node)) keys.add(key);
  }
  return [...keys].sort();
}

/**
 * Fills a prompt's references: input values (strings as they are, anything else as JSON), the
 * outputs of ancestors (text as it is, JSON outputs as JSON text; a skipped one is `null`) and a
 * foreach's or loop's locals.
 */
export function renderPrompt(
  prompt: string,
  input: Record<string, unknown>,
  outputs: ReadonlyMap<string, unknown>,
  locals: PromptLocals = {},
): string {
  const text = (value: unknown) => (typeof value === 'string' ? value : JSON.stringify(value ?? null));
  return prompt.replace(TEMPLATE, (whole, expression: string) => {
    const input1 = INPUT_REF.exec(expression);
    if (input1) return text(input[input1[1]]);
    const node = NODE_REF.exec(expression);
    if (node) return text(outputs.get(node[1]));
    const local = LOCAL_REF.exec(expression);
    if (local && local[1] in locals) return text(locals[local[1] as LocalName]);
    return whole;
  });
}

/** The ids each node depends on, directly or not (its ancestors), branches included. */
export function ancestorsOf(definition: AgentflowDefinition): Map<string, Set<string>> {
  const deps = effectiveDeps(definition.nodes);
  const memo = new Map<string, Set<string>>();
  const visit = (id: string, trail: Set<string>): Set<string> => {
    const known = memo.get(id);
    if (known) return known;
    const result = new Set<string>();
    if (trail.has(id)) return result;
    trail.add(id);
    for (const parent of deps.get(id) ?? []) {
      if (!deps.has(parent)) continue;
      result.add(parent);
      for (const above of visit(parent, trail)) result.add(above);
    }
    trail.delete(id);
    memo.set(id, result);
    return result;
  };
  for (const node of definition.nodes) visit(node.id, new Set());
  return memo;
}

/**
 * What a shape cannot say: unique ids, known references, no cycle, templates over ancestors,
 * usable schemas, and the control flow's rules (see `controlProblems`).
 */
function graphProblems(definition: AgentflowDefinition, prefix: (path: PropertyKey[]) => string): Problem[] {
  const problems: Problem[] = [];
  const firstIndex = new Map<string, number>();
  definition.nodes.forEach((node, index) => {
    if (firstIndex.has(node.id))
      problems.push({
        path: prefix(['nodes', index, 'id']),
        message: `duplicate node id "${node.id}" (also nodes.${firstIndex.get(node.id)})`,
      });
    else firstIndex.set(node.id, index);
  });
  definition.nodes.forEach((node, index) => {
    const seen = new Set<string>();
    (node.dependsOn ?? []).forEach((parent, at) => {
      const path = prefix(['nodes', index, 'dependsOn', at]);
      if (!firstIndex.has(parent)) problems.push({ path, message: `no node has the id "${parent}"` });
      else if (parent === node.id) problems.push({ path, message: 'a node cannot depend on itself' });
      else if (seen.has(parent)) problems.push({ path, message: `"${parent}" is listed twice` });
      seen.add(parent);
    });
  });
  if (!firstIndex.has(definition.output)) problems.push({ path: prefix(['output']), message: `no node has the id "${definition.output}"` });
  const control = controlProblems(definition, firstIndex, prefix);
  problems.push(...control.references);
  if (problems.length) return problems;

  const cycle = findCycle(definition);
  if (cycle) {
    const index = firstIndex.get(cycle[0])!;
    return [
      {
        path: prefix(['nodes', index, 'dependsOn']),
        message: `dependency cycle: ${[...cycle, cycle[0]].join(' → ')}; to repeat work use a loop node (type "loop", with maxIterations)`,
      },
    ];
  }

  problems.push(...toolProblems(definition, prefix));

  const ancestors = ancestorsOf(definition);
  problems.push(...control.afterCycles(ancestors));
  definition.nodes.forEach((node, index) => {
    const field = node.type === 'subflow' ? 'input' : 'prompt';
    const path = prefix(['nodes', index, field]);
    const locals: readonly LocalName[] =
      node.type === 'foreach' ? ['item', 'index'] : node.type === 'loop' ? ['loop.previous', 'loop.iteration'] : [];
    for (const template of nodeTemplates(node)) {
      const { refs, bad } = templateRefs(template);
      for (const expression of bad)
        problems.push({ path, message: `unknown template ${expression}: use {{input.<key>}} or {{nodes.<id>.output}}` });
      for (const ref of refs) {
        if (ref.kind === 'local' && !locals.includes(ref.name))
          problems.push({
            path,
            message: `${ref.text} is only read by ${ref.name.startsWith('loop') ? 'a loop node' : 'a foreach node'}'s prompt`,
          });
        if (ref.kind !== 'node') continue;
        if (!firstIndex.has(ref.id)) problems.push({ path, message: `${ref.text} names no node` });
        else if (!ancestors.get(node.id)?.has(ref.id))
          problems.push({ path, message: `${ref.text} is not an ancestor of "${node.id}": add "${ref.id}" to its dependsOn` });
      }
      if (refs.length + bad.length > MAX_TEMPLATE_REFS)
        problems.push({ path, message: `at most ${MAX_TEMPLATE_REFS} {{…}} references per prompt` });
    }
    if (node.type === 'human_input') problems.push(...humanInputProblems(node, (path) => prefix(['nodes', index, ...path])));
    const outputSchema = 'outputSchema' in node ? node.outputSchema : undefined;
    if (outputSchema !== undefined) {
      const schemaPath = prefix(['nodes', index, 'outputSchema']);
      const regex = regexKeyword(outputSchema);
      if (JSON.stringify(outputSchema).length > MAX_OUTPUT_SCHEMA_CHARS)
        problems.push({ path: schemaPath, message: `at most ${MAX_OUTPUT_SCHEMA_CHARS} characters of JSON` });
      else if (regex)
        problems.push({
          path: prefix(['nodes', index, 'outputSchema', ...regex]),
          message: `"${String(regex.at(-1))}" is not supported: regular expressions are not run on model answers`,
        });
      else {
        try {
          z.fromJSONSchema(outputSchema);
        } catch (error) {
          problems.push({
            path: schemaPath,
            message: `not a usable JSON Schema: ${error instanceof Error ? error.message.slice(0, 200) : 'invalid'}`,
          });
        }
      }
    }
  });
  return problems;
}

/**
 * Tools: every name a node lists is a device tool, one of the flow's HTTP tools, a tool of one of
 * the owner's MCP servers (`mcp__<server>__<tool>`, checked when the node runs) or
 * `search_knowledge` (the owner's knowledge bases), listed once; HTTP tools have unique names that
 * are not device tools' nor `search_knowledge`, and URLs on an allowed origin; device
 * tools need the device they run on.
 */
function toolProblems(definition: AgentflowDefinition, prefix: (path: PropertyKey[]) => string): Problem[] {
  const problems: Problem[] = [];
  const http = new Set<string>();
  const allowed = new Set(definition.allowedOrigins ?? []);
  (definition.httpTools ?? []).forEach((tool, index) => {
    if (isDeviceToolName(tool.name) || tool.name === SEARCH_KNOWLEDGE || http.has(tool.name))
      problems.push({ path: prefix(['httpTools', index, 'name']), message: `"${tool.name}" is already the name of another tool` });
    http.add(tool.name);
    const origin = new URL(tool.url).origin;
    if (!allowed.has(origin)) problems.push({ path: prefix(['httpTools', index, 'url']), message: `${origin} is not in allowedOrigins` });
  });
  let usesDevice = false;
  definition.nodes.forEach((node, index) => {
    const seen = new Set<string>();
    (isPromptNode(node) ? (node.tools ?? []) : []).forEach((name, at) => {
      const path = prefix(['nodes', index, 'tools', at]);
      if (seen.has(name)) problems.push({ path, message: `"${name}" is listed twice` });
      else if (isDeviceToolName(name)) usesDevice = true;
      else if (!http.has(name) && !isMcpToolName(name) && name !== SEARCH_KNOWLEDGE)
        problems.push({
          path,
          message: `unknown tool "${name}": use a device tool, one of httpTools, ${SEARCH_KNOWLEDGE} or mcp__<server>__<tool>`,
        });
      seen.add(name);
    });
  });
  if (usesDevice && !definition.deviceId)
    problems.push({ path: prefix(['deviceId']), message: 'nodes use device tools: name the device they run on' });
  return problems;
}

/** One cycle of the dependency graph as node ids in order, or null when it is a DAG. */
function findCycle(definition: AgentflowDefinition): string[] | null {
  const deps = effectiveDeps(definition.nodes);
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (id: string): string[] | null => {
    if (state.get(id) === 'done') return null;
    if (state.get(id) === 'open') return stack.slice(stack.indexOf(id));
    state.set(id, 'open');
    stack.push(id);
    for (const parent of deps.get(id) ?? []) {
      const found = visit(parent);
      if (found) return found;
    }
    stack.pop();
    state.set(id, 'done');
    return null;
  };
  for (const node of definition.nodes) {
    const found = visit(node.id);
    if (found) return found;
  }
  return null;
}

/**
 * The problem of an agentflow definition that was valid when it was saved but is not run now
 * (a regular-expression keyword in an `outputSchema`), as a path under `nodes`, or null.
 */
export function unsafeStoredSchema(definition: AgentflowDefinition): Problem | null {
  for (const [index, node] of definition.nodes.entries()) {
    const schema = 'outputSchema' in node ? node.outputSchema : undefined;
    const regex = schema === undefined ? null : regexKeyword(schema);
    if (regex)
      return {
        path: ['definition', 'nodes', index, 'outputSchema', ...regex].map(String).join('.'),
        message: `"${String(regex.at(-1))}" is not supported: regular expressions are not run on model answers`,
      };
  }
  return null;
}

/** A text output cut to {@link MAX_NODE_OUTPUT_CHARS} (ending with {@link TRUNCATED_MARK} when cut). */
export function boundedText(text: string): { text: string; truncated: boolean } {
  if (text.length <= MAX_NODE_OUTPUT_CHARS) return { text, truncated: false };
  return { text: text.slice(0, MAX_NODE_OUTPUT_CHARS - TRUNCATED_MARK.length) + TRUNCATED_MARK, truncated: true };
}

/** Whether a stored output is a text that was cut (see {@link boundedText}). */
export const wasTruncated = (output: unknown) =>
  typeof output === 'string' && output.length === MAX_NODE_OUTPUT_CHARS && output.endsWith(TRUNCATED_MARK);

/** A zod validator for a node's `outputSchema` (checked on save, so it builds). */
export function outputValidator(schema: Record<string, unknown>): z.ZodType {
  if (regexKeyword(schema)) throw new Error('outputSchema holds a regular-expression keyword');
  return z.fromJSONSchema(schema);
}
