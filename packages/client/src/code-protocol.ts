import { z } from 'zod';
import { commandRisks, describeCommandRisks } from './command-risk';

export { COMMAND_RISKS, commandRisks, describeCommandRisks, type CommandRisk, type CommandRiskKind } from './command-risk';

/**
 * The project actions of the `/device` protocol: the coding assistant's file and command tools,
 * run by a device that serves a project folder (`device_hello.project`). Paths are relative to the
 * project's root, with `/` between segments. The same rules are checked by the server before a call
 * is sent and by the device before it touches the disk (where symbolic links are resolved too).
 */

export const CODE_ACTIONS = [
  'read_file',
  'list_files',
  'search_files',
  'write_file',
  'edit_file',
  'delete_file',
  'execute_command',
  'list_changes',
  'undo_change',
] as const;
export type CodeAction = (typeof CODE_ACTIONS)[number];

/** Content a write may carry, and a file an edit may change: under 1 MiB of UTF-8. */
export const MAX_WRITE_BYTES = 1024 * 1024;
/** A file larger than this is never read (10 MiB). */
export const MAX_READ_BYTES = 10 * 1024 * 1024;
/** What one `read_file` reply carries at most; the rest is read with `offset`. */
export const MAX_READ_REPLY_BYTES = 256 * 1024;
/** The longest unified diff a change preview carries (longer ones are cut with a marker line). */
export const MAX_DIFF_BYTES = 256 * 1024;

/** Device names Windows reserves, and files operating systems keep for themselves. */
const SYSTEM_NAMES = /^(con|prn|aux|nul|com[1-9]|lpt[1-9])(\..*)?$|^(desktop\.ini|thumbs\.db)$/i;

/**
 * Why `path` may not be used in a project, or null when it may: it must be relative, use `/`,
 * have no `..`, `.` or empty segment, no hidden segment (a name starting with `.`), no system file
 * name, and no control character. `allowRoot` accepts `.` (or an empty path) for the root itself.
 */
export function projectPathProblem(path: string, allowRoot = false): string | null {
  if (path === '' || path === '.' || path === './') return allowRoot ? null : 'a file path is required';
  if (path.length > 1_024) return 'the path is longer than 1024 characters';
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
  if (/[\u0000-\u001f\u007f]/.test(path)) return 'the path contains a control character';
  if (/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(path))
    return 'the path is not valid text (a lone surrogate)';
  if (path.includes('\\')) return 'use / between folders, not \\';
  if (path.startsWith('/') || /^[A-Za-z]:/.test(path) || path.startsWith('~')) return 'the path must be relative to the project root';
  const segments = path.replace(/^\.\//, '').replace(/\/$/, '').split('/');
  for (const segment of segments) {
    if (segment === '..') return 'the path may not contain ..';
    if (segment === '' || segment === '.') return 'the path has an empty or . segment';
    if (segment.startsWith('.')) return `hidden files and folders are not reachable (${segment})`;
    if (SYSTEM_NAMES.test(segment)) return `${segment} is a system file name`;
  }
  return null;
}

/** The path in the form the device resolves: no leading `./`, no trailing `/`; `.` for the root. */
export const normalProjectPath = (path: string): string => path.replace(/^\.\//, '').replace(/\/$/, '') || '.';

const pathRule = (allowRoot: boolean) =>
  z
    .string()
    .max(1_024)
    .superRefine((path, ctx) => {
      const problem = projectPathProblem(path, allowRoot);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .transform(normalProjectPath);

/** A file in the project. */
export const projectFileSchema = pathRule(false);
/** A folder in the project; `.` (the default) is the root. */
export const projectFolderSchema = pathRule(true);

/**
 * The old deny list, matched on the whole command line: it still refuses a command that the shell
 * words reader (./command-risk) cannot read, so that nothing it refused runs for being unreadable.
 */
export const DENIED_COMMANDS: readonly RegExp[] = [
  /(^|[\s;&|(])(sudo|su|doas|pkexec)(\s|$)/i,
  /(^|[\s;&|(])(shutdown|reboot|halt|poweroff|init\s+[06])(\s|$)/i,
  /(^|[\s;&|(])(mkfs(\.\w+)?|fdisk|parted|diskpart|format\s+[a-z]:)(\s|$)/i,
  /(^|[\s;&|(])dd\s+[^;&|]*\bof=\/dev\//i,
  />\s*\/dev\/(sd|nvme|disk|hd)/i,
  /:\(\)\s*\{[^}]*:\s*\|\s*:/,
  /(^|[\s;&|(])(curl|wget)\b[^;&]*\|\s*(sudo\s+)?(sh|bash|zsh|fish|dash|python\d?|node|perl)\b/i,
  /(^|[\s;&|(])rm\s+(-[a-z-]+\s+)*(\/|~|\$HOME|\.\.)(\/?\*?)?(\s|$)/i,
  /(^|[\s;&|(])rm\s+(-[a-z-]+\s+)*--no-preserve-root/i,
  /(^|[\s;&|(])chmod\s+(-[a-z]+\s+)*[0-7]*777\s+\/(\s|$)/i,
  /(^|[\s;&|(])chown\s+(-[a-z]+\s+)*\S+\s+\/(\s|$)/i,
  /(^|[\s;&|(])git\s+push\s+[^;&|]*(--force|-f)(\s|$)/i,
];

/**
 * Why `command` is refused whatever the approval, or null. Refused: what runs as superuser, shuts
 * the machine down, formats or overwrites a disk, is a fork bomb, pipes a download into a shell,
 * deletes the root, home or parent folder, changes the root folder's owner or permissions, or
 * force-pushes or rewrites a remote branch, however it is spelled (read from its shell words:
 * ./command-risk). A command that cannot be read is checked against {@link DENIED_COMMANDS};
 * `extra` (a device's own rules) is matched on the whole line. Approval is the guard for
 * everything else: a command runs as the user who runs the device, so this is no sandbox.
 */
export function deniedCommand(command: string, extra: readonly RegExp[] = []): string | null {
  const risks = commandRisks(command);
  const denied = risks.find((risk) => risk.denied);
  if (denied) return `the command is on the deny list: ${describeCommandRisks([denied])}`;
  const rules = risks.some((risk) => risk.kind === 'unreadable') ? [...DENIED_COMMANDS, ...extra] : extra;
  const rule = rules.find((pattern) => pattern.test(command));
  return rule ? `the command is on the deny list (${rule.source})` : null;
}

const utf8Bytes = (text: string) => new TextEncoder().encode(text).length;
const sha256Hex = z.string().regex(/^[a-f0-9]{64}$/, 'a SHA-256 hash in hex');
/** What `write_file` may write: under {@link MAX_WRITE_BYTES} of UTF-8. */
export const projectContentSchema = z
  .string()
  .refine((text) => utf8Bytes(text) < MAX_WRITE_BYTES, `content must be under ${MAX_WRITE_BYTES} bytes`);
/**
 * On a change: the SHA-256 of the file as the approved diff showed it (null: it did not exist).
 * The device refuses the change when the file differs now, so what runs is what was approved.
 */
const expectedHash = sha256Hex.nullable().optional();
const commandText = z
  .string()
  .trim()
  .min(1)
  .max(4_000)
  .superRefine((command, ctx) => {
    const denied = deniedCommand(command);
    if (denied) ctx.addIssue({ code: 'custom', message: denied });
  });
/** One search/replace block: `search` must occur exactly once in the file (or `replaceAll`). */
export const editBlockSchema = z.strictObject({
  search: z.string().min(1).max(MAX_WRITE_BYTES),
  replace: z.string().max(MAX_WRITE_BYTES),
  replaceAll: z.boolean().optional(),
});
const changeId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'a change id');

export const codeCallShapes = {
  read_file: z.strictObject({
    action: z.literal('read_file'),
    path: projectFileSchema,
    /** First line to return (1-based; default 1). */
    offset: z.number().int().min(1).optional(),
    /** Lines to return (default 2000). */
    limit: z.number().int().min(1).max(10_000).optional(),
  }),
  list_files: z.strictObject({
    action: z.literal('list_files'),
    path: projectFolderSchema.optional(),
    recursive: z.boolean().optional(),
    limit: z.number().int().min(1).max(5_000).optional(),
  }),
  search_files: z.strictObject({
    action: z.literal('search_files'),
    /** A JavaScript regular expression (or plain text with `literal`). */
    pattern: z.string().min(1).max(500),
    literal: z.boolean().optional(),
    path: projectFolderSchema.optional(),
    /** File names to search, as a glob with `*` and `?` (e.g. `*.ts`). */
    include: z.string().min(1).max(200).optional(),
    caseSensitive: z.boolean().optional(),
    limit: z.number().int().min(1).max(1_000).optional(),
  }),
  write_file: z.strictObject({
    action: z.literal('write_file'),
    path: projectFileSchema,
    content: projectContentSchema,
    expectedHash,
    /** Only compute the change (its diff), write nothing. */
    dryRun: z.boolean().optional(),
  }),
  edit_file: z.strictObject({
    action: z.literal('edit_file'),
    path: projectFileSchema,
    edits: z.array(editBlockSchema).min(1).max(50),
    expectedHash,
    dryRun: z.boolean().optional(),
  }),
  delete_file: z.strictObject({ action: z.literal('delete_file'), path: projectFileSchema, expectedHash, dryRun: z.boolean().optional() }),
  execute_command: z.strictObject({
    action: z.literal('execute_command'),
    command: commandText,
    /** The device's own limit applies when this is longer. */
    timeoutMs: z.number().int().min(100).max(600_000).optional(),
  }),
  list_changes: z.strictObject({ action: z.literal('list_changes'), limit: z.number().int().min(1).max(500).optional() }),
  undo_change: z.strictObject({ action: z.literal('undo_change'), changeId }),
} satisfies Record<CodeAction, z.ZodType>;

/** One recorded change of the project (the device keeps the previous content to undo it). */
export const changeRecordSchema = z.object({
  changeId,
  path: z.string(),
  tool: z.enum(['write_file', 'edit_file', 'delete_file', 'undo_change']),
  /** ISO time it was applied. */
  at: z.string(),
  created: z.boolean(),
  deleted: z.boolean(),
  /** The file's hash after the change (null: deleted). */
  hash: sha256Hex.nullable(),
  previousHash: sha256Hex.nullable(),
  /** Set once the change was undone (the id of the undo's own change). */
  undoneBy: changeId.nullable().optional(),
});
export type ChangeRecord = z.output<typeof changeRecordSchema>;

/** A change as computed or applied: its unified diff, and the record when it was applied. */
const changeReply = z.object({
  id: z.string().min(1),
  path: z.string(),
  diff: z.string(),
  /** The hash of the file before the change (null: it did not exist): pass it as `expectedHash` to apply exactly this diff. */
  previousHash: sha256Hex.nullable(),
  created: z.boolean(),
  deleted: z.boolean(),
  applied: z.boolean(),
  change: changeRecordSchema.optional(),
});

const replyId = z.string().min(1);
export const codeReplySchemas = {
  read_file: z.object({
    id: replyId,
    path: z.string(),
    content: z.string(),
    size: z.number().int().nonnegative(),
    totalLines: z.number().int().nonnegative(),
    startLine: z.number().int().min(1),
    endLine: z.number().int().nonnegative(),
    truncated: z.boolean(),
  }),
  list_files: z.object({
    id: replyId,
    entries: z.array(z.object({ path: z.string(), type: z.enum(['file', 'dir']), size: z.number().int().nonnegative().optional() })),
    truncated: z.boolean(),
  }),
  search_files: z.object({
    id: replyId,
    matches: z.array(z.object({ path: z.string(), line: z.number().int().min(1), text: z.string() })),
    filesSearched: z.number().int().nonnegative(),
    truncated: z.boolean(),
  }),
  write_file: changeReply,
  edit_file: changeReply,
  delete_file: changeReply,
  execute_command: z.object({
    id: replyId,
    exitCode: z.number().int().nullable(),
    signal: z.string().nullable(),
    stdout: z.string(),
    stderr: z.string(),
    timedOut: z.boolean(),
    truncated: z.boolean(),
    durationMs: z.number().nonnegative(),
  }),
  list_changes: z.object({ id: replyId, changes: z.array(changeRecordSchema) }),
  undo_change: changeReply,
} satisfies Record<CodeAction, z.ZodType>;

/** `device_hello.project`: the folder a device serves to the coding assistant. */
export const deviceProjectSchema = z.strictObject({
  /** The folder's name (shown to the user); the device keeps its absolute path to itself. */
  name: z.string().min(1).max(200),
  /** The absolute root as the device sees it, when the device chooses to say it. */
  root: z.string().min(1).max(4_096).optional(),
});
export type DeviceProject = z.output<typeof deviceProjectSchema>;
