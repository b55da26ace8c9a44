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

/** A budget reservation given back whole: the door's release, or the kernel's holdings released by hand. */
const RELEASE = /\breleaseUnused\b|\.releaseAll\(/;

/**
 * Requests that reserve a run's first call before queueing it, and give the reservation back when
 * nothing was queued to take it (a refusal, a duplicate, a queue that failed): the reservation never
 * reached a run. Each is a request path, never a runner.
 */
const ADMISSIONS = [
  'agents/agent-service.ts',
  'agents/journey.ts',
  'turns/budget-admission.ts',
  'assistant/session-lifecycle.ts',
  'flows/flow-executions.ts',
  'generation/generation-service.ts',
];

/**
 * Once a run holds a budget reservation, the run kernel gives back what no model call took, on
 * every terminal move (src/runs/run-holdings.ts): no runner releases one by hand.
 */
describe('budget reservations of runs', () => {
  const files = sourceFiles(SRC).map((path) => ({ name: relative(SRC, path), text: readFileSync(path, 'utf8') }));

  test('there are sources to check, and the kernel itself releases', () => {
    expect(files.length).toBeGreaterThan(100);
    expect(RELEASE.test(files.find((file) => file.name === 'runs/run-kernel.ts')!.text)).toBe(true);
    expect(files.filter((file) => file.name.endsWith('-runner.ts')).length).toBeGreaterThanOrEqual(7);
  });

  test('are released only by the run kernel, the budget door and the admissions that queued nothing', () => {
    const releasing = files
      .filter((file) => !file.name.startsWith('runs/') && !file.name.startsWith('budget/'))
      .filter((file) => !ADMISSIONS.includes(file.name))
      .filter((file) => RELEASE.test(file.text))
      .map((file) => file.name);
    expect(releasing).toEqual([]);
  });

  test('no runner or worker touches the release, even through an allowed name', () => {
    const runners = files.filter((file) => file.name.endsWith('-runner.ts') || file.name.startsWith('workers/'));
    expect(runners.filter((file) => RELEASE.test(file.text)).map((file) => file.name)).toEqual([]);
    expect(ADMISSIONS.filter((name) => name.endsWith('-runner.ts'))).toEqual([]);
  });

  test('every admission listed still releases (a stale entry is removed)', () => {
    for (const name of ADMISSIONS) expect([name, RELEASE.test(files.find((file) => file.name === name)?.text ?? '')]).toEqual([name, true]);
  });
});
