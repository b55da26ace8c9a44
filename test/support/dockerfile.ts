import { readFileSync } from 'node:fs';
import path from 'node:path';

/** One Dockerfile instruction: its keyword (upper case) and the rest of the line. */
export interface DockerInstruction {
  keyword: string;
  args: string;
}

/** The repository's Dockerfile as instructions: continuations joined, comments and blanks dropped. */
export function dockerfileInstructions(root = path.resolve(__dirname, '../..')): DockerInstruction[] {
  return readFileSync(path.join(root, 'Dockerfile'), 'utf8')
    .replace(/\\\r?\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => {
      const [keyword, ...rest] = line.split(/\s+/);
      return { keyword: keyword.toUpperCase(), args: rest.join(' ') };
    });
}
