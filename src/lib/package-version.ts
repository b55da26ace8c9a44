import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** Switchboard's version: the nearest package.json above this file (src/ or the .build bundle). */
export function packageVersion(): string {
  let dir = __dirname;
  while (!existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  try {
    return (JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}
