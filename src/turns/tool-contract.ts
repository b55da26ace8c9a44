import { SEARCH_KNOWLEDGE } from '../knowledge/retrieval';
import { isMcpToolName } from '../mcp/mcp-tool-names';

/** The toolsets the orchestrator routes a message to (the desktop app's protocol calls them "agents"). */
export const TOOLSETS = ['task', 'project', 'checkpoint', 'note'] as const;
export type ToolsetName = (typeof TOOLSETS)[number];

/**
 * The names of the device tools (the catalog in ./tools.ts), without their bodies: the API process
 * checks flow definitions against them and must not load the model layer to do it.
 */
export const DEVICE_TOOL_NAMES = [
  'list_tasks',
  'create_task',
  'update_task',
  'delete_task',
  'list_tasks_due_today',
  'list_task_comments',
  'add_task_comment',
  'delete_task_comment',
  'list_projects',
  'list_all_projects',
  'get_project',
  'create_project',
  'update_project',
  'delete_project',
  'list_checkpoints',
  'create_checkpoint',
  'update_checkpoint',
  'delete_checkpoint',
  'list_notes',
  'get_note',
  'create_note',
  'update_note',
  'delete_note',
] as const;

export const isDeviceToolName = (name: string): boolean => (DEVICE_TOOL_NAMES as readonly string[]).includes(name);

/** The coding assistant's toolsets: reading the project, changing it, running commands in it. */
export const CODE_TOOLSETS = ['code_read', 'code_write', 'code_exec'] as const;
export type CodeToolsetName = (typeof CODE_TOOLSETS)[number];

/** Where a tool call runs: on the user's device, on an MCP server, as an HTTP request, or in this server. */
export type ToolExecutor = 'device' | 'mcp' | 'http' | 'server';

/**
 * What a tool call does, and so what its result brings into a turn and whether it may follow
 * untrusted text: `read` only reads; `write` changes data (rows, files, an MCP server's state);
 * `send` sends a request that is not a read (an HTTP tool with a method other than GET or HEAD);
 * `execute` runs a command.
 */
export type ToolRisk = 'read' | 'write' | 'send' | 'execute';

/**
 * One tool's contract, declared once and read by every turn (the chat turn, the coding turn, the
 * agentflow node): where it runs, what it does, and whether a call waits for a person's approval
 * whatever the turn read. The deployment's list of dangerous tools (HITL_DANGEROUS_TOOLS) widens
 * `asks`; it never narrows it.
 */
export interface ToolContract {
  executor: ToolExecutor;
  risk: ToolRisk;
  asks: boolean;
}

/**
 * The coding tools' contracts: reading the project runs at once; a change to a file and a command
 * wait for the user's approval, whatever the deployment's list of dangerous tools says.
 */
const CODE_TOOL_CONTRACTS: Readonly<Record<string, ToolContract>> = {
  read_file: { executor: 'device', risk: 'read', asks: false },
  list_files: { executor: 'device', risk: 'read', asks: false },
  search_files: { executor: 'device', risk: 'read', asks: false },
  write_file: { executor: 'device', risk: 'write', asks: true },
  edit_file: { executor: 'device', risk: 'write', asks: true },
  delete_file: { executor: 'device', risk: 'write', asks: true },
  execute_command: { executor: 'device', risk: 'execute', asks: true },
};

/** A coding tool (./code-tools of the coding layer), by name. */
export const isCodeToolName = (name: string): boolean => Object.hasOwn(CODE_TOOL_CONTRACTS, name);

/** A device data tool: `list_*` and `get_*` read; `delete_*` deletes and asks first; the rest write. */
const deviceToolContract = (name: string): ToolContract => ({
  executor: 'device',
  risk: name.startsWith('list_') || name.startsWith('get_') ? 'read' : 'write',
  asks: name.startsWith('delete_'),
});

/** What a tool's contract depends on besides its name: the offer of the turn it is called in. */
export interface ContractContext {
  /** HTTP tools of an agentflow by name: their method and URL. */
  httpTools?: ReadonlyArray<{ name: string; method: string; url: string }>;
  /** Qualified names of the offered MCP tools whose server declares `readOnlyHint: true`. */
  mcpReadOnly?: ReadonlySet<string>;
  /** Qualified names of the offered MCP tools their registration does not list as safe: they ask first. */
  mcpAsks?: ReadonlySet<string>;
  /** Tools of this server offered to the turn (the coding plan tool): they read nothing from outside and change nothing. */
  serverTools?: ReadonlySet<string>;
}

const READ_METHODS = new Set(['GET', 'HEAD']);

/**
 * The contract of a tool by name, in the turn's context; undefined for a name no tool has.
 * An MCP tool runs on its server, reads when its server says so (`readOnlyHint`) and asks first
 * unless its registration lists it as safe; an HTTP tool reads when it GETs (or HEADs) and else sends.
 */
export function toolContract(name: string, context: ContractContext = {}): ToolContract | undefined {
  if (isCodeToolName(name)) return CODE_TOOL_CONTRACTS[name];
  if (isDeviceToolName(name)) return deviceToolContract(name);
  // The server's own knowledge search: it reads the caller's documents and changes nothing.
  if (name === SEARCH_KNOWLEDGE) return { executor: 'server', risk: 'read', asks: false };
  if (context.serverTools?.has(name)) return { executor: 'server', risk: 'read', asks: false };
  if (isMcpToolName(name))
    return { executor: 'mcp', risk: context.mcpReadOnly?.has(name) ? 'read' : 'write', asks: Boolean(context.mcpAsks?.has(name)) };
  const http = context.httpTools?.find((tool) => tool.name === name);
  if (http) return { executor: 'http', risk: READ_METHODS.has(http.method.toUpperCase()) ? 'read' : 'send', asks: false };
  return undefined;
}

/** Whether a call of `name` waits for a person by its contract (before the deployment's list widens it). */
export const asksByContract = (name: string, context: ContractContext = {}): boolean => Boolean(toolContract(name, context)?.asks);
