import { describeCheckpoint, describeNote, describeProject, describeTask, listText } from '../../src/turns/tool-format';
import { deviceInsertFor } from '../../src/agents/extraction';

describe('rows an agent run inserted, as the model reads them', () => {
  test('every insert of an agent run is marked suggested and not approved, whatever its table', () => {
    for (const type of ['tasks', 'notes', 'projects'] as const) {
      const insert = deviceInsertFor({ type, title: 'From a mail', description: 'Body' });
      expect(insert).toMatchObject({ table: type, data: { isAiSuggested: 1, isApproved: 0 } });
    }
  });

  test('a suggested note, project, task or checkpoint says so until a person approves it', () => {
    const suggested = { isAiSuggested: 1, isApproved: 0 };
    expect(listText([{ id: 'n1', title: 'Wire the money', ...suggested }], 'note', describeNote)).toBe(
      'Found 1 note(s):\n- Wire the money (suggested by an agent, not approved) (id: n1)',
    );
    expect(describeProject({ id: 'p1', name: 'Acme', status: 'active', ...suggested })).toBe(
      'Acme (suggested by an agent, not approved) (status: active, id: p1)',
    );
    expect(describeTask({ id: 't1', title: 'Call', ...suggested })).toContain('(suggested by an agent, not approved)');
    expect(describeCheckpoint({ id: 'c1', title: 'Launch', projectId: 'p1', ...suggested })).toBe(
      'Launch (suggested by an agent, not approved) (project: p1, id: c1)',
    );
  });

  test('an approved or user-written row carries no mark', () => {
    expect(describeNote({ id: 'n2', title: 'Mine' })).toBe('Mine (id: n2)');
    expect(describeTask({ id: 't2', title: 'Approved', isAiSuggested: 1, isApproved: 1 })).toBe('Approved (id: t2)');
  });
});
