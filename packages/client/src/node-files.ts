/**
 * Node only: reads an agent run's folders from disk for `connectDevice({ readAgentFiles })`.
 * Kept out of `./index` so browser bundles never see `node:fs`.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, extname, join, resolve } from 'node:path';
import type { AgentReadItem, AgentRunConfig } from './device';

export { projectTools, type ProjectToolsOptions } from './node-project';

export interface ReadFolderOptions {
  signal?: AbortSignal;
  /** Descend into sub-folders (default true), at most this deep (default 16). */
  recursive?: boolean;
  maxDepth?: number;
}

/**
 * Yields the text files under `config.paths` whose extension is in `config.fileExtensions`
 * (`md` or `.md`, any case; an empty list takes every file), skipping hidden entries and
 * symbolic links. A file over `maxFileBytes`, a binary file or an unreadable path is yielded as
 * `{path, error}`; reading stops after `maxFiles` files.
 */
export async function* readFolderFiles(
  config: Pick<AgentRunConfig, 'paths' | 'fileExtensions' | 'maxFiles' | 'maxFileBytes'>,
  options: ReadFolderOptions = {},
): AsyncGenerator<AgentReadItem> {
  const extensions = new Set(config.fileExtensions.map((ext) => `.${ext.replace(/^\./, '').toLowerCase()}`));
  const maxDepth = options.recursive === false ? 0 : (options.maxDepth ?? 16);
  let yielded = 0;

  async function* walk(path: string, depth: number): AsyncGenerator<AgentReadItem> {
    let entries;
    try {
      entries = await readdir(path, { withFileTypes: true });
    } catch (error) {
      yield { path, error: reason(error) };
      return;
    }
    entries.sort((a, b) => a.name.localeCompare(b.name));
    for (const entry of entries) {
      if (options.signal?.aborted || yielded >= config.maxFiles) return;
      if (entry.name.startsWith('.') || entry.isSymbolicLink()) continue;
      const child = join(path, entry.name);
      if (entry.isDirectory()) {
        if (depth < maxDepth) yield* walk(child, depth + 1);
      } else if (entry.isFile() && (extensions.size === 0 || extensions.has(extname(entry.name).toLowerCase()))) {
        const item = await readOne(child);
        if (!('error' in item)) yielded += 1;
        yield item;
      }
    }
  }

  async function readOne(path: string): Promise<AgentReadItem> {
    try {
      const info = await stat(path);
      if (info.size > config.maxFileBytes)
        return { path, error: `${info.size} bytes is over the limit of ${config.maxFileBytes} per file` };
      const bytes = await readFile(path);
      if (bytes.includes(0)) return { path, error: 'not a text file' };
      return {
        path,
        name: basename(path),
        content: bytes.toString('utf8'),
        metadata: { size: info.size, modifiedAt: info.mtime.toISOString() },
      };
    } catch (error) {
      return { path, error: reason(error) };
    }
  }

  for (const root of config.paths) {
    if (options.signal?.aborted || yielded >= config.maxFiles) return;
    const path = resolve(root);
    let info;
    try {
      info = await stat(path);
    } catch (error) {
      yield { path, error: reason(error) };
      continue;
    }
    if (info.isDirectory()) yield* walk(path, 0);
    else {
      const item = await readOne(path);
      if (!('error' in item)) yielded += 1;
      yield item;
    }
  }
}

const reason = (error: unknown) => {
  const code = (error as { code?: string }).code;
  if (code === 'ENOENT') return 'no such file or folder';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  return error instanceof Error ? error.message : String(error);
};
