/**
 * Node only: serves a project folder to the coding assistant, for `connectDevice({ project })`.
 * Every path is checked against the project's rules (./code-protocol) and resolved with its
 * symbolic links before anything is read or written; changes are written to a temporary file and
 * renamed over the target, and every applied change keeps the previous content so it can be undone.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, realpath, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import {
  deniedCommand,
  MAX_READ_BYTES,
  MAX_READ_REPLY_BYTES,
  MAX_WRITE_BYTES,
  projectPathProblem,
  type ChangeRecord,
  type DeviceProject,
} from './code-protocol';
import { unifiedDiff } from './code-diff';
import type { ProjectServer } from './device-store';
import type { ToolCall, ToolReply } from './protocol';

export interface ProjectToolsOptions {
  /** The project folder; everything the assistant reads, writes or runs stays inside it. */
  root: string;
  /** The name shown to the user (default: the folder's name). */
  name?: string;
  /** Say the absolute root in `device_hello` (default false: only the name). */
  announceRoot?: boolean;
  /** Files larger than this are never read (default and maximum 10 MiB). */
  maxReadBytes?: number;
  /** The longest a command may run (default 60 s); a call asking for longer gets this. */
  commandTimeoutMs?: number;
  /** Bytes of stdout and of stderr kept per command (default 64 KiB each). */
  outputBytes?: number;
  /** More commands to refuse, besides the built-in deny list. */
  denyCommands?: readonly RegExp[];
  /** Folder names that listing and search skip (default `node_modules`); hidden ones are always skipped. */
  exclude?: readonly string[];
  /** Where the previous content of each change is kept (default `~/.switchboard/changes/<hash of the root>`). */
  historyDir?: string;
  /** Changes kept for undo (default 200; older ones are forgotten). */
  historyLimit?: number;
  /** Test hook: runs between writing the temporary file and renaming it over the target. */
  beforeRename?(path: string): Promise<void> | void;
}

type Call<A extends ToolCall['action']> = Extract<ToolCall, { action: A }>;
type ChangeCall = Call<'write_file'> | Call<'edit_file'> | Call<'delete_file'>;

/** Thrown for a refusal; its message goes back to the server as `{id, error}`. */
class Refused extends Error {}

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The text of a file, or a refusal when it is not UTF-8 text (a NUL byte or invalid UTF-8). */
function textOf(bytes: Buffer, path: string): string {
  if (bytes.subarray(0, 8_000).includes(0)) throw new Refused(`${path} is a binary file; only text files can be read or changed`);
  try {
    return utf8.decode(bytes);
  } catch {
    throw new Refused(`${path} is a binary file (not UTF-8 text); only text files can be read or changed`);
  }
}

/** A glob of file names (`*`, `?`) as a regular expression. */
const globRegExp = (glob: string) =>
  new RegExp(
    `^${glob
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
    'i',
  );

const errorCode = (error: unknown) => (error as { code?: string }).code;

/**
 * The project's tools as the device answers them. `await projectTools({ root })` checks the root
 * (an existing folder, its real path) once; pass the result as `connectDevice({ project })`.
 */
export async function projectTools(options: ProjectToolsOptions): Promise<ProjectServer & { root: string }> {
  const root = await realpath(resolve(options.root));
  if (!(await stat(root)).isDirectory()) throw new Error(`${root} is not a folder`);
  const maxReadBytes = Math.min(options.maxReadBytes ?? MAX_READ_BYTES, MAX_READ_BYTES);
  const commandTimeoutMs = options.commandTimeoutMs ?? 60_000;
  const outputBytes = options.outputBytes ?? 64 * 1024;
  const exclude = new Set(options.exclude ?? ['node_modules']);
  const historyDir = options.historyDir ?? join(homedir(), '.switchboard', 'changes', sha256(root).slice(0, 16));
  const historyLimit = options.historyLimit ?? 200;
  const project: DeviceProject = { name: options.name ?? basename(root), ...(options.announceRoot ? { root } : {}) };
  // Changes run one at a time, so a check of a file's hash and its write are never interleaved.
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(work: () => Promise<T>): Promise<T> => {
    const next = queue.then(work, work);
    // eslint-disable-next-line no-restricted-syntax -- the caller of serial() gets the rejection; the queue only orders the next change after it
    queue = next.catch(() => undefined);
    return next;
  };

  const inside = (path: string) => path === root || path.startsWith(root + sep);

  /**
   * The absolute path of `rel` inside the root, symbolic links resolved: the target when it
   * exists, else its nearest existing folder joined with the rest. Refused when it leaves the root
   * or lands on a hidden or system name.
   */
  async function locate(rel: string, allowRoot = false): Promise<{ abs: string; rel: string; exists: boolean }> {
    const problem = projectPathProblem(rel, allowRoot);
    if (problem) throw new Refused(`${rel}: ${problem}`);
    const wanted = resolve(root, rel);
    if (!inside(wanted)) throw new Refused(`${rel} is outside the project`);
    let existing = wanted;
    const rest: string[] = [];
    for (;;) {
      try {
        existing = await realpath(existing);
        break;
      } catch (error) {
        if (errorCode(error) !== 'ENOENT') throw error;
        rest.unshift(basename(existing));
        existing = dirname(existing);
      }
    }
    const abs = join(existing, ...rest);
    if (!inside(abs)) throw new Refused(`${rel} leads outside the project through a symbolic link`);
    const real = relative(root, abs).split(sep).join('/');
    const realProblem = real ? projectPathProblem(real) : null;
    if (realProblem) throw new Refused(`${rel} leads to ${real}: ${realProblem}`);
    return { abs, rel: real || '.', exists: rest.length === 0 };
  }

  /** The entries under `folder` (hidden ones, excluded folders and symbolic links left out), sorted. */
  async function* walk(folder: string, recursive: boolean): AsyncGenerator<{ abs: string; rel: string; dir: boolean }> {
    let entries;
    try {
      entries = await readdir(folder, { withFileTypes: true });
    } catch {
      return;
    }
    entries.sort((a, b) => a.name.localeCompare(b.name));
    for (const entry of entries) {
      if (entry.name.startsWith('.') || entry.isSymbolicLink() || projectPathProblem(entry.name)) continue;
      const abs = join(folder, entry.name);
      const rel = relative(root, abs).split(sep).join('/');
      if (entry.isDirectory()) {
        if (exclude.has(entry.name)) continue;
        yield { abs, rel, dir: true };
        if (recursive) yield* walk(abs, true);
      } else if (entry.isFile()) yield { abs, rel, dir: false };
    }
  }

  async function readText(abs: string, rel: string, limit: number): Promise<string> {
    const info = await stat(abs);
    if (!info.isFile()) throw new Refused(`${rel} is not a file`);
    if (info.size > limit) throw new Refused(`${rel} is ${info.size} bytes, over the limit of ${limit}`);
    return textOf(await readFile(abs), rel);
  }

  async function readFileCall(call: Call<'read_file'>): Promise<ToolReply> {
    const { abs, rel, exists } = await locate(call.path);
    if (!exists) throw new Refused(`${rel} does not exist`);
    const text = await readText(abs, rel, maxReadBytes);
    const lines = text.split('\n');
    if (lines.length > 1 && lines[lines.length - 1] === '') lines.pop();
    const startLine = call.offset ?? 1;
    const wanted = lines.slice(startLine - 1, startLine - 1 + (call.limit ?? 2_000));
    const kept: string[] = [];
    let bytes = 0;
    for (const line of wanted) {
      bytes += Buffer.byteLength(line) + 1;
      if (bytes > MAX_READ_REPLY_BYTES) break;
      kept.push(line);
    }
    return {
      id: call.id,
      path: rel,
      content: kept.join('\n'),
      size: Buffer.byteLength(text),
      totalLines: text === '' ? 0 : lines.length,
      startLine,
      endLine: startLine - 1 + kept.length,
      truncated: startLine - 1 + kept.length < lines.length,
    };
  }

  async function listFilesCall(call: Call<'list_files'>): Promise<ToolReply> {
    const { abs, rel, exists } = await locate(call.path ?? '.', true);
    if (!exists || !(await stat(abs)).isDirectory()) throw new Refused(`${rel} is not a folder`);
    const limit = call.limit ?? 1_000;
    const entries: Array<{ path: string; type: 'file' | 'dir'; size?: number }> = [];
    let truncated = false;
    for await (const entry of walk(abs, call.recursive ?? false)) {
      if (entries.length >= limit) {
        truncated = true;
        break;
      }
      entries.push(entry.dir ? { path: entry.rel, type: 'dir' } : { path: entry.rel, type: 'file', size: (await stat(entry.abs)).size });
    }
    return { id: call.id, entries, truncated };
  }

  async function searchFilesCall(call: Call<'search_files'>): Promise<ToolReply> {
    const { abs, rel, exists } = await locate(call.path ?? '.', true);
    if (!exists) throw new Refused(`${rel} does not exist`);
    let pattern: RegExp;
    try {
      const source = call.literal ? call.pattern.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') : call.pattern;
      pattern = new RegExp(source, call.caseSensitive ? '' : 'i');
    } catch (error) {
      throw new Refused(`the pattern is not a valid regular expression: ${(error as Error).message}`);
    }
    const include = call.include ? globRegExp(call.include) : undefined;
    const limit = call.limit ?? 100;
    const matches: Array<{ path: string; line: number; text: string }> = [];
    let filesSearched = 0;
    const files = (await stat(abs)).isDirectory()
      ? walk(abs, true)
      : (async function* () {
          yield { abs, rel, dir: false };
        })();
    for await (const file of files) {
      if (file.dir || (include && !include.test(basename(file.rel)))) continue;
      let text: string;
      try {
        text = await readText(file.abs, file.rel, maxReadBytes);
      } catch {
        continue; // binary, too large or unreadable: not searched
      }
      filesSearched += 1;
      const lines = text.split('\n');
      for (let index = 0; index < lines.length; index += 1) {
        // Very long lines (minified files) are searched in their first 4000 characters only.
        const line = lines[index].length > 4_000 ? lines[index].slice(0, 4_000) : lines[index];
        if (!pattern.test(line)) continue;
        if (matches.length >= limit) return { id: call.id, matches, filesSearched, truncated: true };
        matches.push({ path: file.rel, line: index + 1, text: line.trim().slice(0, 300) });
      }
    }
    return { id: call.id, matches, filesSearched, truncated: false };
  }

  /** The file's content after the edits; each search block must match once (or `replaceAll`). */
  function applyEdits(rel: string, text: string, edits: Call<'edit_file'>['edits']): string {
    let next = text;
    edits.forEach((edit, index) => {
      const count = next.split(edit.search).length - 1;
      const which = edits.length > 1 ? `edit ${index + 1}: ` : '';
      if (count === 0) throw new Refused(`${which}the search text was not found in ${rel}; read the file and copy the exact lines`);
      if (count > 1 && !edit.replaceAll)
        throw new Refused(`${which}the search text occurs ${count} times in ${rel}; add surrounding lines so it matches once`);
      next = edit.replaceAll ? next.split(edit.search).join(edit.replace) : next.replace(edit.search, () => edit.replace);
    });
    return next;
  }

  /** Writes `content` to `abs` through a temporary file in the same folder, renamed over it. */
  async function writeAtomically(abs: string, content: string): Promise<void> {
    await mkdir(dirname(abs), { recursive: true });
    const temp = join(dirname(abs), `.${basename(abs)}.${randomBytes(6).toString('hex')}.tmp`);
    let mode: number | undefined;
    try {
      mode = (await stat(abs)).mode;
    } catch {
      mode = undefined;
    }
    try {
      await writeFile(temp, content, { encoding: 'utf8', flag: 'wx', ...(mode !== undefined ? { mode } : {}) });
      await options.beforeRename?.(abs);
      await rename(temp, abs);
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
  }

  const historyFile = join(historyDir, 'changes.json');
  async function readHistory(): Promise<ChangeRecord[]> {
    try {
      return JSON.parse(await readFile(historyFile, 'utf8')) as ChangeRecord[];
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return [];
      throw error;
    }
  }
  async function writeHistory(changes: ChangeRecord[]): Promise<void> {
    const dropped = changes.slice(0, Math.max(0, changes.length - historyLimit));
    await Promise.all(dropped.map((change) => rm(join(historyDir, `${change.changeId}.prev`), { force: true })));
    const kept = changes.slice(dropped.length);
    const temp = `${historyFile}.${randomBytes(6).toString('hex')}.tmp`;
    await writeFile(temp, JSON.stringify(kept), 'utf8');
    await rename(temp, historyFile);
  }

  /**
   * Computes a change (its diff), and applies it unless `dryRun`: the previous content is kept in
   * the history first, then the file is replaced (or removed), then the change is recorded.
   */
  async function change(
    call: { id: string; path: string; expectedHash?: string | null; dryRun?: boolean },
    tool: ChangeRecord['tool'],
    nextOf: (current: string | null, rel: string) => string | null,
    undoOf?: string,
  ): Promise<ToolReply> {
    const { abs, rel, exists } = await locate(call.path);
    let current: string | null = null;
    if (exists) {
      const info = await lstat(abs);
      if (!info.isFile()) throw new Refused(`${rel} is not a file`);
      current = await readText(abs, rel, maxReadBytes);
    }
    const previousHash = current === null ? null : sha256(current);
    if (call.expectedHash !== undefined && call.expectedHash !== previousHash)
      throw new Refused(`${rel} changed since this change was shown (it is not the file the diff was made from); read it again`);
    const next = nextOf(current, rel);
    if (next !== null && Buffer.byteLength(next) >= MAX_WRITE_BYTES)
      throw new Refused(`${rel} would be ${Buffer.byteLength(next)} bytes; a change may leave at most ${MAX_WRITE_BYTES - 1}`);
    const diff = unifiedDiff(rel, current, next);
    const reply = { id: call.id, path: rel, diff, previousHash, created: current === null && next !== null, deleted: next === null };
    if (call.dryRun || next === current) return { ...reply, applied: false };
    const record: ChangeRecord = {
      changeId: `c${Date.now().toString(36)}${randomBytes(5).toString('hex')}`,
      path: rel,
      tool,
      at: new Date().toISOString(),
      created: reply.created,
      deleted: reply.deleted,
      hash: next === null ? null : sha256(next),
      previousHash,
      undoneBy: null,
    };
    await mkdir(historyDir, { recursive: true });
    if (current !== null) await writeFile(join(historyDir, `${record.changeId}.prev`), current, 'utf8');
    try {
      if (next === null) await unlink(abs);
      else await writeAtomically(abs, next);
    } catch (error) {
      await rm(join(historyDir, `${record.changeId}.prev`), { force: true });
      throw error;
    }
    const history = await readHistory();
    if (undoOf) history.forEach((item) => item.changeId === undoOf && (item.undoneBy = record.changeId));
    await writeHistory([...history, record]);
    return { ...reply, applied: true, change: record };
  }

  const changeCall = (call: ChangeCall) =>
    serial(() =>
      change(call, call.action, (current, rel) => {
        if (call.action === 'write_file') return call.content;
        if (current === null) throw new Refused(`${rel} does not exist`);
        return call.action === 'edit_file' ? applyEdits(rel, current, call.edits) : null;
      }),
    );

  const undoCall = (call: Call<'undo_change'>) =>
    serial(async () => {
      const record = (await readHistory()).find((item) => item.changeId === call.changeId);
      if (!record) throw new Refused(`there is no change ${call.changeId} on this device (it may be older than the kept history)`);
      if (record.undoneBy) throw new Refused(`change ${call.changeId} was undone already`);
      const previous = record.previousHash === null ? null : await readFile(join(historyDir, `${record.changeId}.prev`), 'utf8');
      // Only the file as the change left it is put back: a later edit is never overwritten.
      return change({ id: call.id, path: record.path, expectedHash: record.hash }, 'undo_change', () => previous, record.changeId).catch(
        (error: unknown) => {
          if (error instanceof Refused && /changed since/.test(error.message))
            throw new Refused(`${record.path} changed after change ${call.changeId}; undo the later changes first`);
          throw error;
        },
      );
    });

  /** Running commands by call id: `cancel(id)` kills one. */
  const running = new Map<string, () => void>();

  async function executeCommand(call: Call<'execute_command'>): Promise<ToolReply> {
    const denied = deniedCommand(call.command, options.denyCommands);
    if (denied) throw new Refused(denied);
    const timeoutMs = Math.min(call.timeoutMs ?? commandTimeoutMs, commandTimeoutMs);
    // The device's own credentials for the server never reach a command.
    const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('SWITCHBOARD_')));
    const started = performance.now();
    return new Promise((done) => {
      const child = spawn(call.command, {
        cwd: root,
        env,
        shell: true,
        detached: process.platform !== 'win32',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const out = { stdout: '', stderr: '' };
      let truncated = false;
      let timedOut = false;
      const collect = (stream: 'stdout' | 'stderr') => (chunk: Buffer) => {
        const room = outputBytes - Buffer.byteLength(out[stream]);
        if (room <= 0) return void (truncated = true);
        const text = chunk.toString('utf8');
        if (Buffer.byteLength(text) > room) truncated = true;
        out[stream] += Buffer.byteLength(text) > room ? Buffer.from(text).subarray(0, room).toString('utf8') : text;
      };
      child.stdout.on('data', collect('stdout'));
      child.stderr.on('data', collect('stderr'));
      const kill = () => {
        try {
          // The whole process group: a shell's children stop with it.
          if (child.pid !== undefined && process.platform !== 'win32') process.kill(-child.pid, 'SIGKILL');
          else child.kill('SIGKILL');
        } catch {
          child.kill('SIGKILL');
        }
      };
      const timer = setTimeout(() => {
        timedOut = true;
        kill();
      }, timeoutMs);
      running.set(call.id, kill);
      const finish = (exitCode: number | null, signal: string | null) => {
        clearTimeout(timer);
        running.delete(call.id);
        done({ id: call.id, exitCode, signal, ...out, timedOut, truncated, durationMs: Math.round(performance.now() - started) });
      };
      child.on('error', (error) => {
        out.stderr += error.message;
        finish(null, null);
      });
      child.on('close', (code, signal) => finish(code, signal));
    });
  }

  async function execute(call: ToolCall): Promise<ToolReply> {
    try {
      switch (call.action) {
        case 'read_file':
          return await readFileCall(call);
        case 'list_files':
          return await listFilesCall(call);
        case 'search_files':
          return await searchFilesCall(call);
        case 'write_file':
        case 'edit_file':
        case 'delete_file':
          return await changeCall(call);
        case 'undo_change':
          return await undoCall(call);
        case 'list_changes':
          return { id: call.id, changes: (await readHistory()).slice(-(call.limit ?? 50)).reverse() };
        case 'execute_command':
          return await executeCommand(call);
        default:
          return { id: call.id, error: `a project does not answer ${call.action}` };
      }
    } catch (error) {
      if (error instanceof Refused) return { id: call.id, error: error.message };
      const code = errorCode(error);
      if (code === 'ENOENT') return { id: call.id, error: 'no such file or folder' };
      if (code === 'EACCES' || code === 'EPERM') return { id: call.id, error: 'permission denied' };
      if (code === 'EISDIR') return { id: call.id, error: 'that is a folder, not a file' };
      return { id: call.id, error: error instanceof Error ? error.message : String(error) };
    }
  }

  /** The server gave up on call `id` (its turn was cancelled): a command it runs is killed with its process group. */
  const cancel = (id: string) => running.get(id)?.();

  return { root, project, execute, cancel };
}
