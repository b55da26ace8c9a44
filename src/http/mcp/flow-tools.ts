import type { CallToolResult, Tool } from '@modelcontextprotocol/sdk/types.js';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020';
import { inputKeys, type AgentflowDefinition } from '../../flows/definition';
import type { FlowEvent } from '../../flows/flow-events';
import type { FlowExecutionRow, FlowRow } from '../../models/schema';

/*
 * Agentflows as MCP tools: a flow's tool name, input and output schemas, and how its execution's
 * events and ended row read as progress messages and tool results. The same in both protocol eras.
 */

/** Characters of the flow's name kept in a tool's name, before the flow id (a name is at most 64). */
const NAME_CHARS = 27;
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * A flow's MCP tool name: its name as letters, digits, `_` and `-` (at most 27), a `-`, and the
 * flow id. Only the id is read back, so a renamed flow answers to its old name too.
 */
export function mcpToolName(flow: Pick<FlowRow, 'id' | 'name'>): string {
  const slug =
    flow.name
      .normalize('NFKD')
      .replace(/[^A-Za-z0-9_-]+/g, '_')
      .replace(/^_+|_+$/g, '')
      .slice(0, NAME_CHARS) || 'flow';
  return `${slug}-${flow.id}`;
}

/** The flow id a tool name carries, or undefined. */
export const flowIdOf = (name: string): string | undefined => UUID.exec(name)?.[0];

/**
 * A flow as an MCP tool: its input schema holds every `{{input.<key>}}` its prompts read, all
 * required, each a string (what a prompt reads; other JSON is written into it as JSON).
 */
export function flowTool(flow: FlowRow): Tool {
  const definition = flow.definition as unknown as AgentflowDefinition;
  const keys = inputKeys(definition);
  const described =
    definition.description ?? `Runs the agentflow "${flow.name}" and returns the output of its node "${definition.output}".`;
  return {
    name: mcpToolName(flow),
    title: flow.name,
    description: described,
    inputSchema: {
      type: 'object',
      properties: Object.fromEntries(
        keys.map((key) => [key, { type: 'string', description: `Read by the flow's prompts as {{input.${key}}}` }]),
      ),
      required: keys,
    },
    ...(outputSchemaOf(definition) ? { outputSchema: outputSchemaOf(definition) as Tool['outputSchema'] } : {}),
    annotations: { title: flow.name, readOnlyHint: false, openWorldHint: true },
  };
}

/**
 * A flow's output schema as its tool declares it: its output node's `outputSchema` when that is an
 * object schema that compiles (a tool's output schema is an object at its root), else none.
 */
export function outputSchemaOf(definition: AgentflowDefinition): Record<string, unknown> | undefined {
  const node = definition.nodes.find((candidate) => candidate.id === definition.output);
  // A foreach's `outputSchema` is each item's; a list of them is no object.
  const schema = node && (node.type === undefined || node.type === 'prompt' || node.type === 'loop') ? node.outputSchema : undefined;
  if (!schema || schema.type !== 'object') return undefined;
  try {
    validatorOf(schema);
    return schema;
  } catch {
    return undefined;
  }
}

/** Compiled validators, the oldest first out: a schema is compiled once while it is in use. */
const validators = new Map<string, { schema: Record<string, unknown>; validate: ValidateFunction }>();
const MAX_VALIDATORS = 500;
let ajv: Ajv2020 | undefined;

/**
 * A JSON Schema 2020-12 validator of the schema (Ajv), compiled once per schema text. `$id` and
 * `$schema` are left out: the schema is validated as 2020-12 and never registered by its id.
 */
export function validatorOf(schema: Record<string, unknown>): ValidateFunction {
  const key = JSON.stringify(schema);
  const known = validators.get(key);
  if (known) return known.validate;
  const { $id: _id, $schema: _dialect, ...compiled } = schema;
  ajv ??= new Ajv2020({ strict: false, validateFormats: false });
  const validate = ajv.compile(compiled);
  if (validators.size >= MAX_VALIDATORS) {
    const [oldest, entry] = validators.entries().next().value!;
    validators.delete(oldest);
    ajv.removeSchema(entry.schema);
  }
  validators.set(key, { schema: compiled, validate });
  return validate;
}

/** The first error of a failed validation as `<path>: <message>` (the path under `root`). */
export function firstError(validate: ValidateFunction, root: string): string {
  const error = validate.errors?.[0];
  if (!error) return `${root}: invalid`;
  const path = error.instancePath ? `${root}${error.instancePath.replace(/\//g, '.')}` : root;
  return `${path}: ${error.message ?? 'invalid'}`;
}

/**
 * The result of an ended execution, its output checked against the tool's output schema: an output
 * that does not match is a tool error `invalid_output`, never structured content a client would trust.
 */
export function checkedResult(event: FlowEvent, executionId: string, outputSchema: Record<string, unknown> | undefined): CallToolResult {
  if (event.type === 'execution_completed' && outputSchema) {
    const validate = validatorOf(outputSchema);
    if (!validate(event.output))
      return textResult(`invalid_output: The flow's output does not match its output schema: ${firstError(validate, 'output')}`, {
        isError: true,
        _meta: { executionId },
      });
  }
  return terminalResult(event, executionId);
}

export const textResult = (text: string, extra: Partial<CallToolResult> = {}): CallToolResult => ({
  content: [{ type: 'text', text }],
  ...extra,
});

/** How a flow event reads as a progress message. */
export function progressMessage(event: FlowEvent): string | undefined {
  switch (event.type) {
    case 'execution_started':
      return `execution ${event.executionId} started`;
    case 'node_started':
      return `node ${event.nodeId} started`;
    case 'node_completed':
      return `node ${event.nodeId} completed`;
    case 'node_failed':
      return `node ${event.nodeId} failed: ${event.error.code}`;
    case 'tool_called':
      return `node ${event.nodeId} called ${event.tool}`;
    case 'approval_requested':
      return `node ${event.nodeId} waits for approval ${event.approvalId} of ${event.tool}`;
    default:
      return undefined;
  }
}

/** The result of a terminal event. */
export function terminalResult(event: FlowEvent, executionId: string): CallToolResult {
  const meta = { _meta: { executionId } };
  if (event.type === 'execution_completed') {
    const { output } = event;
    const structured = output !== null && typeof output === 'object' && !Array.isArray(output);
    return textResult(typeof output === 'string' ? output : JSON.stringify(output), {
      ...(structured ? { structuredContent: output as Record<string, unknown> } : {}),
      ...meta,
    });
  }
  if (event.type === 'cancelled') return textResult(`The execution ${executionId} was cancelled`, { isError: true, ...meta });
  const error = event.type === 'execution_failed' ? event.error : { code: 'interrupted', message: 'The execution ended without a result' };
  return textResult(`${error.code}: ${error.message}`, { isError: true, ...meta });
}

/** An ended execution's row as the result its `tools/call` would have answered. */
export function rowResult(execution: FlowExecutionRow): CallToolResult {
  if (execution.status === 'completed')
    return checkedResult(
      {
        type: 'execution_completed',
        executionId: execution.id,
        output: execution.output,
        usage: { inputTokens: 0, outputTokens: 0, costUsd: 0 },
      },
      execution.id,
      outputSchemaOf(execution.definition as unknown as AgentflowDefinition),
    );
  if (execution.status === 'cancelled') return terminalResult({ type: 'cancelled', executionId: execution.id }, execution.id);
  return terminalResult(
    {
      type: 'execution_failed',
      executionId: execution.id,
      error: { code: execution.errorCode ?? 'failed', message: execution.errorMessage ?? 'The execution failed' },
    },
    execution.id,
  );
}
