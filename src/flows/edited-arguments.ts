import { toolNamed } from '../coding/coding-agents';
import { isMcpToolName } from '../mcp/mcp-tool-names';
import type { HitlRequestRow } from '../models/schema';
import { MAX_DEFINITION_DEPTH, tooDeep } from './definition';
import { httpToolArgsSchema } from './http-tool';

/**
 * The problems of arguments an approver gives a waiting call instead of the model's, against the
 * schema the call's tool declares (each at `arguments.<path>`; none: they fit): a device or coding
 * tool's own schema, an agentflow HTTP tool's query and body. An MCP server's tool is refused: its
 * schema is the server's, which this process has not read.
 */
export function editedArgumentsProblems(row: Pick<HitlRequestRow, 'toolName' | 'deviceId'>, args: Record<string, unknown>) {
  const deep = tooDeep(args, MAX_DEFINITION_DEPTH);
  if (deep)
    return [{ path: ['arguments', ...deep].map(String).join('.'), message: `nested more than ${MAX_DEFINITION_DEPTH} levels deep` }];
  if (isMcpToolName(row.toolName))
    return [
      {
        path: 'arguments',
        message: `${row.toolName} is an MCP server's tool: its arguments cannot be edited, approve or reject it as asked`,
      },
    ];
  // An agentflow HTTP tool (never named like a device tool) has its approval name its host: `http:<host>`.
  const schema = toolNamed(row.toolName)?.schema ?? (row.deviceId.startsWith('http:') ? httpToolArgsSchema : undefined);
  if (!schema) return [{ path: 'arguments', message: `the arguments of ${row.toolName} cannot be edited` }];
  const parsed = schema.safeParse(args);
  if (parsed.success) return [];
  return parsed.error.issues.map((issue) => ({
    path: ['arguments', ...issue.path].map(String).join('.'),
    message: issue.message,
  }));
}
