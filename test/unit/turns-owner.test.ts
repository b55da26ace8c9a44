import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const SRC = join(__dirname, '../../src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

/**
 * What parks a turn or stores its continuation: the continuation's own helpers, an approval
 * request written with a continuation, a round claimed by marking its requests resumed.
 */
const PARKS = /\b(storeContinuation|loadContinuation|parkSiblings|claimParkedRound|markResumedAll)\s*\(|\bapprovals!?\??\.request\s*\(/;

/** The owner of the parking protocol, and the repository that stores what it asks it to. */
const OWNERS = (path: string) => path.startsWith('turns/') || path === 'models/hitl-repository.ts';

describe('parking a tool-using turn', () => {
  const files = sourceFiles(SRC);

  test('the pattern catches each way of parking, and the turn layer does park', () => {
    for (const line of [
      'storeContinuation(parked, [], usage)',
      'const { parked } = loadContinuation(row.continuation)',
      'await parkSiblings(repos.hitl, row)',
      'await claimParkedRound(hitl, group, false)',
      'await hitl.markResumedAll(ids)',
      'await approvals.request({ userId })',
      'await this.deps.approvals!.request({ userId })',
    ])
      expect({ line, caught: PARKS.test(line) }).toEqual({ line, caught: true });
    for (const line of ['await parkRound(approvals, owner, parked, turn, requestOf)', 'approvals.allow(userId, 2)', 'requests.push(x)'])
      expect({ line, caught: PARKS.test(line) }).toEqual({ line, caught: false });
    const parking = files
      .filter((path) => relative(SRC, path).startsWith('turns/'))
      .filter((path) => PARKS.test(readFileSync(path, 'utf8')));
    expect(parking.length).toBeGreaterThan(0);
  });

  test('only src/turns parks turns and stores continuations', () => {
    const outside = files
      .map((path) => relative(SRC, path))
      .filter((path) => !OWNERS(path))
      .filter((path) => PARKS.test(readFileSync(join(SRC, path), 'utf8')));
    expect(outside).toEqual([]);
  });
});
