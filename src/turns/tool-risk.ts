import { SEARCH_KNOWLEDGE } from '../knowledge/retrieval';
import { parseMcpToolName } from '../mcp/mcp-tool-names';
import { isCodeToolName, isDeviceToolName, toolContract, type ContractContext, type ToolRisk } from './tool-contract';

export type { ToolRisk } from './tool-contract';

/** What the risk of a call depends on besides its name: the flow's HTTP tools, the MCP tools marked read-only. */
export type RiskContext = Pick<ContractContext, 'httpTools' | 'mcpReadOnly'>;

/**
 * The risk of a tool by its contract (./tool-contract): unknown tools count as `write`, so nothing
 * unlisted slips through as a read. A turn that has read untrusted text (see {@link taintSource})
 * asks a person before any call that is not a `read`: text from outside must not steer a write, a
 * send or a command.
 */
export function toolRisk(name: string, context: RiskContext = {}): ToolRisk {
  return toolContract(name, context)?.risk ?? 'write';
}

/** Device tools whose result only tells back what the model itself sent: creating a row, adding a comment. */
const echoesOwnWords = (name: string) => isDeviceToolName(name) && (name.startsWith('create_') || name.startsWith('add_'));

/**
 * Where the result of a call comes from, in the words an approval's reason uses ("this request
 * follows text from …"), when that result is untrusted text: device rows (notes, tasks, …), files
 * and command output on the device, an MCP server's answer, a fetched page. Undefined for a
 * result that only repeats the model's own words (a created row) and for tools of our own (the
 * plan tool): those do not taint a turn.
 */
export function taintSource(name: string, args: unknown, context: RiskContext = {}): string | undefined {
  if (echoesOwnWords(name)) return undefined;
  if (isCodeToolName(name)) {
    const path = (args as { path?: unknown } | null)?.path;
    return typeof path === 'string' && path ? `${name} of ${path.slice(0, 200)} on the device` : `${name} on the device`;
  }
  if (isDeviceToolName(name)) return `${name} on the device`;
  const mcp = parseMcpToolName(name);
  if (mcp) return `the MCP server "${mcp.server}" (its tool ${mcp.tool})`;
  const http = context.httpTools?.find((tool) => tool.name === name);
  if (http) return `the HTTP tool ${name} (${urlHost(http.url)})`;
  // Documents are written by whoever wrote them: a passage may carry instructions.
  if (name === SEARCH_KNOWLEDGE) return 'documents of the knowledge bases';
  return undefined;
}

/** The host of an HTTP tool's URL (its text, cut, when it does not parse). */
export const urlHost = (url: string): string => {
  try {
    return new URL(url).host;
  } catch {
    return url.slice(0, 100);
  }
};

/**
 * Whether a call must wait for a person because its turn is tainted: the turn read untrusted text
 * (`taint` lists from where) and the call is not a read.
 */
export const taintNeedsApproval = (name: string, taint: readonly string[], context: RiskContext = {}): boolean =>
  taint.length > 0 && toolRisk(name, context) !== 'read';

/** The words an approval's reason adds for a tainted turn. */
export const taintReason = (taint: readonly string[]): string => `this request follows text from ${taint.join(', ')}`;
