import type { ToolCall, ToolReply } from '@switchboard/client';
import { connectFailure, describeDeviceCall } from '../../src/app/device-command';

const call = (fields: Record<string, unknown>) => ({ id: 'c1', ...fields }) as unknown as ToolCall;
const reply = (fields: Record<string, unknown>) => ({ id: 'c1', ...fields }) as unknown as ToolReply;
const change = { diff: '', previousHash: null, applied: true, created: false, deleted: false };

describe('switchboard device: the line for each call', () => {
  test.each([
    ['a new file', call({ action: 'write_file', path: 'a.md' }), reply({ ...change, path: 'a.md', created: true }), 'Created a.md'],
    ['a file written over', call({ action: 'write_file', path: 'a.md' }), reply({ ...change, path: 'a.md' }), 'Wrote a.md'],
    ['an edit', call({ action: 'edit_file', path: 'src/x.js' }), reply({ ...change, path: 'src/x.js' }), 'Edited src/x.js'],
    ['a delete', call({ action: 'delete_file', path: 'old.txt' }), reply({ ...change, path: 'old.txt', deleted: true }), 'Deleted old.txt'],
    ['an undo', call({ action: 'undo_change', changeId: 'ch1' }), reply({ ...change, path: 'a.md' }), 'Undid a change of a.md'],
    [
      'a command',
      call({ action: 'execute_command', command: 'npm test' }),
      reply({ exitCode: 1, signal: null, timedOut: false, durationMs: 1530 }),
      'Ran npm test (exit 1, 1.5 s)',
    ],
    [
      'a command that timed out',
      call({ action: 'execute_command', command: 'sleep 99' }),
      reply({ exitCode: null, signal: 'SIGKILL', timedOut: true, durationMs: 30_000 }),
      'Ran sleep 99 (timed out, 30.0 s)',
    ],
    [
      'a refused write',
      call({ action: 'write_file', path: '.env' }),
      reply({ error: 'hidden files are off limits' }),
      'Refused write_file .env: hidden files are off limits',
    ],
    [
      'a refused command',
      call({ action: 'execute_command', command: 'sudo x' }),
      reply({ error: 'denied' }),
      'Refused to run sudo x: denied',
    ],
  ])('%s', (_name, theCall, theReply, line) => {
    expect(describeDeviceCall(theCall, theReply)).toBe(line);
  });

  test.each([
    ['a read', call({ action: 'read_file', path: 'a.md' }), reply({ path: 'a.md', content: 'x' })],
    ['a search', call({ action: 'search_files', pattern: 'x' }), reply({ matches: [] })],
    [
      'a preview (dry run) of a write',
      call({ action: 'write_file', path: 'a.md', dryRun: true }),
      reply({ ...change, path: 'a.md', applied: false }),
    ],
    ['a task row', call({ action: 'insert', table: 'tasks' }), reply({ row: {} })],
  ])('%s says nothing', (_name, theCall, theReply) => {
    expect(describeDeviceCall(theCall, theReply)).toBeNull();
  });
});

describe('switchboard device: why a connection failed, in words', () => {
  test('a refused token', () => {
    expect(connectFailure(new Error('unauthorized'))).toBe(
      'the server refused SWITCHBOARD_TOKEN (a wrong, revoked or expired key or token)',
    );
  });

  test('a refused connection, nested as Socket.IO reports it', () => {
    const error = Object.assign(new Error('websocket error'), {
      description: { error: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' }) },
    });

    expect(connectFailure(error)).toBe('connection refused (is Switchboard running at that address?)');
  });

  test('an unknown host, and an error with no system code', () => {
    expect(connectFailure(Object.assign(new Error('websocket error'), { cause: { code: 'ENOTFOUND' } }))).toBe('host not found');
    expect(connectFailure(new Error('timeout'))).toBe('timeout');
  });
});
