import { backupFileName, retainedBackups } from '../../src/models/backup';

/** One backup a day at 02:00 UTC for `days` days up to `last` (inclusive), newest first. */
function daily(last: string, days: number, ext = 'pgdump'): string[] {
  const end = Date.parse(`${last}T02:00:00Z`);
  return Array.from({ length: days }, (_, i) => `switchboard-${new Date(end - i * 86_400_000).toISOString().slice(0, 10)}T020000Z.${ext}`);
}

/** The backups a directory keeps: 7 daily, 4 weekly (ISO weeks), 12 monthly, the newest of each. */
describe('backup retention', () => {
  test('a year and a half of daily backups keeps the last 7 days, the last of each of 4 weeks and of each of 12 months', () => {
    const names = daily('2026-11-26', 540);
    const kept = [...retainedBackups(names)].sort().reverse();
    expect(kept).toEqual([
      // Days: the last seven (Thursday 26 back to Friday 20).
      ...daily('2026-11-26', 7),
      // Weeks (Monday to Sunday): this week's newest is the 26th and last week's the 22nd (both kept
      // above); then the Sundays 15 and 8 November.
      'switchboard-2026-11-15T020000Z.pgdump',
      'switchboard-2026-11-08T020000Z.pgdump',
      // Months: November's newest is the 26th (kept above); then each month's last day back to December 2025.
      'switchboard-2026-10-31T020000Z.pgdump',
      'switchboard-2026-09-30T020000Z.pgdump',
      'switchboard-2026-08-31T020000Z.pgdump',
      'switchboard-2026-07-31T020000Z.pgdump',
      'switchboard-2026-06-30T020000Z.pgdump',
      'switchboard-2026-05-31T020000Z.pgdump',
      'switchboard-2026-04-30T020000Z.pgdump',
      'switchboard-2026-03-31T020000Z.pgdump',
      'switchboard-2026-02-28T020000Z.pgdump',
      'switchboard-2026-01-31T020000Z.pgdump',
      'switchboard-2025-12-31T020000Z.pgdump',
    ]);
  });

  test('several backups a day: only the newest of each day counts, and files that are not backups are left out', () => {
    const names = [
      'switchboard-2026-11-26T020000Z.pgdump',
      'switchboard-2026-11-26T140000Z.pgdump',
      'switchboard-2026-11-25T020000Z.tar.gz',
      'switchboard-2026-11-25T020000Z.pgdump.partial',
      'notes.txt',
    ];
    expect([...retainedBackups(names, { daily: 2, weekly: 0, monthly: 0 })].sort()).toEqual([
      'switchboard-2026-11-25T020000Z.tar.gz',
      'switchboard-2026-11-26T140000Z.pgdump',
    ]);
  });

  test('ISO weeks cross the year: 2026-01-01 (Thursday) is in 2026-W01 with 2025-12-29, apart from 2025-12-28', () => {
    const names = [
      'switchboard-2026-01-01T020000Z.pgdump',
      'switchboard-2025-12-29T020000Z.pgdump',
      'switchboard-2025-12-28T020000Z.pgdump',
    ];
    expect([...retainedBackups(names, { daily: 0, weekly: 2, monthly: 0 })].sort()).toEqual([
      'switchboard-2025-12-28T020000Z.pgdump',
      'switchboard-2026-01-01T020000Z.pgdump',
    ]);
  });

  test('file names carry the kind and the UTC time, so they sort by time', () => {
    const at = new Date('2026-11-26T19:59:07.123Z');
    expect(backupFileName('postgres', at)).toBe('switchboard-2026-11-26T195907Z.pgdump');
    expect(backupFileName('pglite', at)).toBe('switchboard-2026-11-26T195907Z.tar.gz');
  });
});
