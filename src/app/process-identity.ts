import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../../config';

/** The file under DATA_DIR that names the process holding that directory, the same across its restarts. */
const IDENTITY_FILE = 'process-identity';

/**
 * The identity this process keeps across restarts, or undefined when nothing makes one safe. A
 * process on the embedded database holds its DATA_DIR alone (the database refuses a second live
 * process on it), so the directory names the process: a uuid written there once, the first time.
 * A restart on the same directory is the same process come back, and whatever an earlier
 * incarnation held is known dead without waiting for it to lapse. A uuid, not the path: two hosts
 * may use the same path. Call after the database is open (its claim on the directory is held).
 */
export function processIdentity(config: Pick<Config, 'database' | 'data'>): string | undefined {
  if (config.database.url !== undefined) return undefined;
  const file = path.resolve(config.data.dir, IDENTITY_FILE);
  let id = '';
  try {
    id = readFileSync(file, 'utf8').trim();
  } catch {
    // first start on this directory
  }
  if (!/^[0-9a-f-]{36}$/.test(id)) {
    id = randomUUID();
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, `${id}\n`);
  }
  return `data-dir:${id}`;
}
