import { z } from 'zod';
import { deniedCommand, MAX_WRITE_BYTES, projectContentSchema, projectPathProblem, type DeviceReply } from '../schemas/device-protocol';
import type { AssistantTool, DeviceCall, ToolContext } from '../turns/device-tools';
import type { CodeToolsetName } from '../turns/tool-contract';

/**
 * The coding assistant's tools: they run on the project folder a device serves (the project
 * actions of the device protocol). Reads run at once; every write, delete and command waits for
 * the user's approval (their risk is in ./tool-names), and the approval request of a change carries
 * its unified diff, computed by the device from the file as it is.
 */

/** Characters of a tool result the model reads at most (a diff, a file, a command's output). */
const MAX_RESULT_CHARS = 60_000;

const cut = (text: string, max = MAX_RESULT_CHARS) =>
  text.length > max ? `${text.slice(0, max)}\n… (${text.length - max} more characters not shown)` : text;

const pathArg = (allowRoot: boolean) =>
  z
    .string()
    .max(1_024)
    .superRefine((path, ctx) => {
      const problem = projectPathProblem(path, allowRoot);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    });
const filePath = pathArg(false).describe('A file path relative to the project root, with / between folders (e.g. src/app.ts)');
const folderPath = pathArg(true).optional().describe('A folder relative to the project root; . or empty for the root');

/** What the approval of a change showed: the file's hash then, so the change applies only to that file. */
export interface ChangePreview {
  diff: string;
  /** The SHA-256 of the file the diff was made from (null: it did not exist). */
  expectedHash: string | null;
}

/** A coding tool: an assistant tool that may compute the preview its approval request shows. */
export interface CodeTool extends AssistantTool {
  toolset: CodeToolsetName;
  /** The change this call would make (nothing written); throws a DeviceRpcError the model is told of. */
  preview?(args: Record<string, unknown>, device: DeviceCall): Promise<ChangePreview>;
}

const defineCode = <S extends z.ZodObject>(t: {
  name: string;
  toolset: CodeToolsetName;
  description: string;
  schema: S;
  run(args: z.infer<S>, device: DeviceCall, context?: ToolContext): Promise<string>;
  preview?(args: z.infer<S>, device: DeviceCall): Promise<ChangePreview>;
}): CodeTool => t as unknown as CodeTool;

/** The approved preview's hash, when the call runs after an approval that showed one. */
const approvedHash = (context?: ToolContext): { expectedHash?: string | null } =>
  context?.approved && 'expectedHash' in context.approved ? { expectedHash: context.approved.expectedHash as string | null } : {};

/** The model's text for an applied (or empty) change. */
function changeText(verb: string, reply: DeviceReply<'write_file'>): string {
  if (!reply.applied) return `No change: ${reply.path} already has that content.`;
  const undo = reply.change ? ` Change id ${reply.change.changeId}: undo restores the previous content.` : '';
  return cut(`${verb} ${reply.path}.${undo}\n${reply.diff}`);
}

const editBlock = z.strictObject({
  search: z.string().min(1).max(MAX_WRITE_BYTES).describe('Exact text copied from the file (whole lines, with their indentation)'),
  replace: z.string().max(MAX_WRITE_BYTES).describe('The text that replaces it'),
  replace_all: z.boolean().optional().describe('Replace every occurrence instead of requiring exactly one'),
});

export const CODE_TOOLS: CodeTool[] = [
  defineCode({
    name: 'read_file',
    toolset: 'code_read',
    description:
      'Read a text file of the project. Returns up to 2000 lines from `offset` (1-based); read on with a larger offset when it says there is more.',
    schema: z.object({
      path: filePath,
      offset: z.number().int().min(1).optional().describe('First line to read (default 1)'),
      limit: z.number().int().min(1).max(10_000).optional().describe('Lines to read (default 2000)'),
    }),
    run: async (a, device) => {
      const r = await device({ action: 'read_file', path: a.path, offset: a.offset, limit: a.limit });
      const range = r.totalLines === 0 ? 'empty file' : `lines ${r.startLine}-${r.endLine} of ${r.totalLines}`;
      const more = r.truncated ? `; more: read again with offset ${r.endLine + 1}` : '';
      return cut(`${r.path} (${range}${more})\n${r.content}`);
    },
  }),
  defineCode({
    name: 'list_files',
    toolset: 'code_read',
    description: 'List the files and folders of a project folder (hidden ones are never listed). recursive: the whole tree under it.',
    schema: z.object({ path: folderPath, recursive: z.boolean().optional() }),
    run: async (a, device) => {
      const r = await device({ action: 'list_files', path: a.path || undefined, recursive: a.recursive, limit: 1_000 });
      if (!r.entries.length) return `${a.path || 'The project root'} is empty.`;
      const lines = r.entries.map((e) => (e.type === 'dir' ? `${e.path}/` : `${e.path} (${e.size ?? 0} bytes)`));
      return cut(`${lines.join('\n')}${r.truncated ? '\n… more entries not listed; list a sub-folder' : ''}`);
    },
  }),
  defineCode({
    name: 'search_files',
    toolset: 'code_read',
    description:
      'Search the text files of the project for a regular expression (JavaScript syntax), like ripgrep: returns path:line: text for each match.',
    schema: z.object({
      pattern: z.string().min(1).max(500).describe('A regular expression, or plain text with literal: true'),
      literal: z.boolean().optional(),
      path: folderPath,
      include: z.string().min(1).max(200).optional().describe('Only files whose name matches this glob, e.g. *.ts'),
      case_sensitive: z.boolean().optional(),
    }),
    run: async (a, device) => {
      const r = await device({
        action: 'search_files',
        pattern: a.pattern,
        literal: a.literal,
        path: a.path || undefined,
        include: a.include,
        caseSensitive: a.case_sensitive,
        limit: 200,
      });
      if (!r.matches.length) return `No match for ${JSON.stringify(a.pattern)} in ${r.filesSearched} file(s).`;
      const lines = r.matches.map((m) => `${m.path}:${m.line}: ${m.text}`);
      return cut(`${lines.join('\n')}${r.truncated ? '\n… more matches not shown; narrow the search' : ''}`);
    },
  }),
  defineCode({
    name: 'write_file',
    toolset: 'code_write',
    description:
      'Create a file, or replace a whole file, with `content` (under 1 MB). Prefer edit_file for changes to an existing file. The user approves the diff first.',
    schema: z.object({ path: filePath, content: projectContentSchema.describe('The whole new content of the file') }),
    preview: async (a, device) => {
      const r = await device({ action: 'write_file', path: a.path, content: a.content, dryRun: true });
      return { diff: r.diff, expectedHash: r.previousHash };
    },
    run: async (a, device, context) =>
      changeText('Wrote', await device({ action: 'write_file', path: a.path, content: a.content, ...approvedHash(context) })),
  }),
  defineCode({
    name: 'edit_file',
    toolset: 'code_write',
    description:
      'Change an existing file with search/replace blocks: each `search` must be copied exactly from the file and match once (add surrounding lines if needed). The user approves the diff first.',
    schema: z.object({ path: filePath, edits: z.array(editBlock).min(1).max(50) }),
    preview: async (a, device) => {
      const r = await device({ action: 'edit_file', path: a.path, edits: blocks(a.edits), dryRun: true });
      return { diff: r.diff, expectedHash: r.previousHash };
    },
    run: async (a, device, context) =>
      changeText('Edited', await device({ action: 'edit_file', path: a.path, edits: blocks(a.edits), ...approvedHash(context) })),
  }),
  defineCode({
    name: 'delete_file',
    toolset: 'code_write',
    description: 'Delete a file of the project (the user approves first; undo restores it).',
    schema: z.object({ path: filePath }),
    preview: async (a, device) => {
      const r = await device({ action: 'delete_file', path: a.path, dryRun: true });
      return { diff: r.diff, expectedHash: r.previousHash };
    },
    run: async (a, device, context) =>
      changeText('Deleted', await device({ action: 'delete_file', path: a.path, ...approvedHash(context) })),
  }),
  defineCode({
    name: 'execute_command',
    toolset: 'code_exec',
    description:
      "Run a shell command in the project's root folder (the user approves it first), e.g. the test command. Returns the exit code and the output (bounded).",
    schema: z.object({
      command: z
        .string()
        .trim()
        .min(1)
        .max(4_000)
        .superRefine((command, ctx) => {
          const denied = deniedCommand(command);
          if (denied) ctx.addIssue({ code: 'custom', message: denied });
        }),
      timeout_ms: z.number().int().min(100).max(600_000).optional().describe('How long it may run (the device caps it)'),
    }),
    run: async (a, device) => {
      // The command's own limit plus a margin: the device answers once it has stopped it.
      const r = await device({ action: 'execute_command', command: a.command, timeoutMs: a.timeout_ms });
      const status = r.timedOut
        ? 'timed out and was stopped'
        : r.exitCode === null
          ? `ended by ${r.signal ?? 'a signal'}`
          : `exit code ${r.exitCode}`;
      const parts = [`$ ${a.command}`, `(${status}, ${Math.round(r.durationMs)} ms${r.truncated ? ', output cut' : ''})`];
      if (r.stdout) parts.push(`stdout:\n${r.stdout}`);
      if (r.stderr) parts.push(`stderr:\n${r.stderr}`);
      return cut(parts.join('\n'));
    },
  }),
];

const blocks = (edits: Array<{ search: string; replace: string; replace_all?: boolean }>) =>
  edits.map((e) => ({ search: e.search, replace: e.replace, ...(e.replace_all ? { replaceAll: true } : {}) }));

export const CODE_TOOLS_BY_NAME = new Map(CODE_TOOLS.map((t) => [t.name, t]));
