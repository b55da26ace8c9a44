import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { agentRuns, chatMessages, chatSessions, flowExecutions, generations, runs } from '../../src/models/schema';
import {
  NO_PUBLIC_STATUS,
  PUBLIC_STATUS,
  publicStatus,
  TERMINAL_RUN_STATUSES,
  type PublicStatusKind,
} from '../../src/schemas/public-status';
import { isTerminal, OPEN_STATUSES, TRANSITIONS, type RunStatus } from '../../src/runs/transitions';

/** Each kind's status column, as the database schema declares its words. */
const COLUMNS: Record<PublicStatusKind, readonly string[]> = {
  generation: generations.status.enumValues,
  chat: chatMessages.status.enumValues,
  notes: chatSessions.documentationStatus.enumValues,
  flow: flowExecutions.status.enumValues,
  agent: agentRuns.status.enumValues,
};

/**
 * A kind's words that are no run's end, each written where it happens (documented in
 * src/schemas/public-status.ts): the open words, and the kind's own states.
 */
const NOT_AN_END: Record<PublicStatusKind, readonly string[]> = {
  generation: ['queued', 'running', 'undone'],
  chat: [],
  notes: ['pending', 'generating'],
  flow: ['queued', 'running'],
  agent: ['queued', 'running', 'partial', 'waiting_device'],
};

describe('the public status of each kind of run', () => {
  test('names exactly the terminal statuses of the run state machine', () => {
    const terminal = (Object.keys(TRANSITIONS) as RunStatus[]).filter((status) => isTerminal(status));
    expect([...TERMINAL_RUN_STATUSES].sort()).toEqual(terminal.sort());
    expect([...TERMINAL_RUN_STATUSES, ...OPEN_STATUSES].sort()).toEqual([...runs.status.enumValues].sort());
  });

  test('covers every kind of run, each once: a word per terminal status, or no status column', () => {
    const kinds = [...Object.keys(PUBLIC_STATUS), ...NO_PUBLIC_STATUS];
    expect(kinds.sort()).toEqual([...runs.kind.enumValues].sort());
    expect(new Set(kinds).size).toBe(kinds.length);
    for (const kind of Object.keys(PUBLIC_STATUS) as PublicStatusKind[])
      expect([kind, Object.keys(PUBLIC_STATUS[kind]).sort()]).toEqual([kind, [...TERMINAL_RUN_STATUSES].sort()]);
  });

  test("every word is one of its column's values, and every value is a word or a documented exception", () => {
    for (const kind of Object.keys(PUBLIC_STATUS) as PublicStatusKind[]) {
      const words = TERMINAL_RUN_STATUSES.map((status) => publicStatus(kind, status)).filter((word) => word !== null);
      for (const word of words) expect([kind, COLUMNS[kind].includes(word)]).toEqual([kind, true]);
      const covered = new Set<string>([...words, ...NOT_AN_END[kind]]);
      expect([kind, [...COLUMNS[kind]].sort()]).toEqual([kind, [...covered].sort()]);
      for (const other of NOT_AN_END[kind]) expect([kind, other, words.includes(other as never)]).toEqual([kind, other, false]);
    }
  });

  test('a success is never a failure word, and a cancel keeps its own word where the column has one', () => {
    for (const kind of Object.keys(PUBLIC_STATUS) as PublicStatusKind[]) {
      expect(publicStatus(kind, 'succeeded')).not.toBe(publicStatus(kind, 'failed'));
      if (COLUMNS[kind].includes('cancelled')) expect([kind, publicStatus(kind, 'cancelled')]).toEqual([kind, 'cancelled']);
    }
  });

  test("the kinds' end code writes no public word of its own: every one comes from the table", () => {
    // The words only a kind's column has (a run's `failed` and `cancelled` are the run's own words too).
    const PUBLIC_ONLY =
      /\b(status|documentationStatus)\s*:\s*'(completed|success|error|ready)'|setDocumentationStatus\([^)]*'(ready|failed)'/;
    const src = join(__dirname, '../../src');
    const ends = ['generation', 'assistant', 'flows', 'agents'].flatMap((folder) =>
      readdirSync(join(src, folder))
        .filter((name) => name.endsWith('-run.ts') || name === 'run-outcome.ts')
        .map((name) => `${folder}/${name}`),
    );
    expect(ends.length).toBeGreaterThanOrEqual(6);
    expect(ends.filter((name) => PUBLIC_ONLY.test(readFileSync(join(src, name), 'utf8')))).toEqual([]);
  });
});
