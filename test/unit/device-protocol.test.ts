import { MemoryStore } from '@switchboard/client/testing';
import { cosineSimilarity as cosine } from '../../src/lib/vectors';
import { describeIssues, deviceIdSchema, replySchemas, toolCallInputSchema, toolCallSchema } from '../../src/schemas/device-protocol';

const problems = (input: unknown) => {
  const result = toolCallInputSchema.safeParse(input);
  return result.success ? null : describeIssues(result.error);
};

describe('tool_call schema', () => {
  test('accepts every action in the shapes the assistant tools send', () => {
    const calls = [
      { action: 'select', table: 'tasks', filters: { projectId: null, status: 'todo', search: null, orderBy: null } },
      { action: 'select', table: 'tasks', filters: { dueDateFrom: 1, dueDateTo: 2 }, limit: 10 },
      { action: 'get', table: 'projects', data: { id: 'p1' } },
      {
        action: 'insert',
        table: 'tasks',
        data: {
          title: 'Buy milk',
          description: null,
          status: 'todo',
          priority: 'high',
          assignee: ['me'],
          dueDate: null,
          projectId: null,
          isAiSuggested: 1,
          isApproved: 0,
        },
      },
      { action: 'insert', table: 'checkpoints', data: { projectId: 'p1', title: 'Beta', date: 1_700_000_000_000 } },
      { action: 'insert', table: 'taskComments', data: { taskId: 't1', author: 'AI', content: 'Looks good' } },
      { action: 'insert', table: 'clients', data: { name: 'Acme', parentId: null, industry: 'Retail' } },
      { action: 'update', table: 'projects', data: { id: 'p1', updates: { status: 'archived', aiSummary: 'Done' } } },
      { action: 'delete', table: 'notes', data: { id: 'n1' } },
      { action: 'vector_upsert', data: { id: 'n1', projectId: 'p1', content: 'Deploy notes' }, vector: [0.1, 0.2] },
      { action: 'vector_search', vector: [0.1, 0.2], limit: 5 },
    ];
    for (const call of calls) expect(problems(call)).toBeNull();
  });

  test('drops null filters, which mean "no filter"', () => {
    expect(toolCallInputSchema.parse({ action: 'select', table: 'tasks', filters: { status: 'todo', projectId: null } })).toEqual({
      action: 'select',
      table: 'tasks',
      filters: { status: 'todo' },
    });
  });

  test.each([
    [{ action: 'truncate', table: 'tasks' }, 'action must be one of'],
    [{ action: 'select', table: 'users' }, 'table must be one of'],
    [{ action: 'insert', table: 'tasks', data: { id: 'x', title: 'a' } }, 'data.id: id is set by the device'],
    [{ action: 'insert', table: 'tasks', data: { title: 'a', updatedAt: 1 } }, 'data.updatedAt: updatedAt is set by the device'],
    [{ action: 'insert', table: 'tasks', data: { title: 'a', due_date: 1 } }, 'Unrecognized key: "due_date"'],
    [{ action: 'insert', table: 'tasks', data: { title: '' } }, 'data.title'],
    [{ action: 'insert', table: 'checkpoints', data: { title: 'no project' } }, 'data.projectId'],
    [{ action: 'insert', table: 'tasks', data: { title: 'a', isApproved: true } }, 'data.isApproved'],
    [{ action: 'update', table: 'tasks', data: { id: 't', updates: { id: 'u' } } }, 'data.updates.id: id is set by the device'],
    [{ action: 'update', table: 'tasks', data: { id: 't', updates: {} } }, 'at least one field'],
    [{ action: 'get', table: 'tasks' }, 'data'],
    [{ action: 'select', table: 'tasks', limit: 0 }, 'limit'],
    [{ action: 'select', table: 'tasks', filters: { 'drop table': 1 } }, 'filters.drop table'],
    [{ action: 'select', table: 'tasks', data: { id: 'x' } }, 'Unrecognized key: "data"'],
    [{ action: 'vector_search', vector: [1, Number.NaN] }, 'vector'],
  ])('rejects %j', (input, message) => {
    expect(problems(input)).toContain(message);
  });

  test('the wire form carries an id', () => {
    expect(toolCallSchema.safeParse({ id: 'c1', action: 'select', table: 'tasks' }).success).toBe(true);
    expect(toolCallSchema.safeParse({ action: 'select', table: 'tasks' }).success).toBe(false);
  });

  test('device ids are 1-128 characters of [A-Za-z0-9._:-]', () => {
    for (const id of ['laptop-1', 'MacBook.local', 'win:DESKTOP_42', 'x'.repeat(128)])
      expect(deviceIdSchema.safeParse(id).success).toBe(true);
    for (const id of ['', 'has space', 'slash/y', 'x'.repeat(129), 'ümlaut', 42]) expect(deviceIdSchema.safeParse(id).success).toBe(false);
  });

  test('replies are checked per action', () => {
    expect(replySchemas.select.safeParse({ id: 'c', rows: [{ id: 'r' }] }).success).toBe(true);
    expect(replySchemas.select.safeParse({ id: 'c', row: { id: 'r' } }).success).toBe(false);
    expect(replySchemas.get.safeParse({ id: 'c', row: null }).success).toBe(true);
    expect(replySchemas.insert.safeParse({ id: 'c', row: null }).success).toBe(false);
    expect(replySchemas.insert.safeParse({ id: 'c', row: { title: 'no id' } }).success).toBe(false);
    expect(replySchemas.delete.safeParse({ id: 'c', deleted: 'yes' }).success).toBe(false);
    expect(replySchemas.vector_search.safeParse({ id: 'c', results: [{ id: 'n', content: 'x', score: 0.5 }] }).success).toBe(true);
  });
});

describe('MemoryStore', () => {
  let clock = 1_000;
  const store = () =>
    new MemoryStore(
      {
        tasks: [
          { title: 'B', priority: 'low', dueDate: 50 },
          { title: 'A', priority: 'high', dueDate: 150, status: 'done' },
        ],
      },
      () => clock++,
    );
  const call = (input: unknown) => toolCallSchema.parse({ id: 'c1', ...(input as object) });

  test('insert adds id, timestamps and column defaults; the device owns them', () => {
    const s = store();
    const reply = s.execute(call({ action: 'insert', table: 'tasks', data: { title: 'New' } }));
    expect(reply).toEqual({
      id: 'c1',
      row: {
        id: expect.stringMatching(/^[0-9a-f-]{36}$/),
        title: 'New',
        status: 'todo',
        priority: 'medium',
        isAiSuggested: 0,
        isApproved: 1,
        createdAt: expect.any(Number),
        updatedAt: expect.any(Number),
      },
    });
  });

  test('select filters by equality, range, search, order and limit', () => {
    const s = store();
    const titles = (filters: Record<string, unknown>, limit?: number) =>
      (s.execute(call({ action: 'select', table: 'tasks', filters, limit })) as unknown as { rows: Array<{ title: string }> }).rows.map(
        (row) => row.title,
      );
    expect(titles({})).toEqual(['B', 'A']);
    expect(titles({ status: 'done' })).toEqual(['A']);
    expect(titles({ dueDateFrom: 100, dueDateTo: 200 })).toEqual(['A']);
    expect(titles({ search: 'b' })).toEqual(['B']);
    expect(titles({ orderBy: 'title' })).toEqual(['A', 'B']);
    expect(titles({ orderBy: '-dueDate' }, 1)).toEqual(['A']);
  });

  test('update keeps id and createdAt, moves updatedAt; missing rows are errors, deletes report whether a row went', () => {
    const s = store();
    const [row] = s.rows('tasks');
    const updated = s.execute(call({ action: 'update', table: 'tasks', data: { id: row.id, updates: { status: 'done' } } })) as {
      row: Record<string, unknown>;
    };
    expect(updated.row).toMatchObject({ id: row.id, status: 'done', createdAt: row.createdAt });
    expect(updated.row.updatedAt).toBeGreaterThan(row.updatedAt as number);
    expect(s.execute(call({ action: 'update', table: 'tasks', data: { id: 'nope', updates: { status: 'done' } } }))).toEqual({
      id: 'c1',
      error: 'tasks nope not found',
    });
    expect(s.execute(call({ action: 'delete', table: 'tasks', data: { id: row.id } }))).toEqual({ id: 'c1', deleted: true });
    expect(s.execute(call({ action: 'delete', table: 'tasks', data: { id: row.id } }))).toEqual({ id: 'c1', deleted: false });
    expect(s.execute(call({ action: 'get', table: 'tasks', data: { id: row.id } }))).toEqual({ id: 'c1', row: null });
  });

  test('vector search ranks by cosine similarity and honours filters and limit', () => {
    const s = new MemoryStore();
    s.execute(call({ action: 'vector_upsert', data: { id: 'a', content: 'A', projectId: 'p1' }, vector: [1, 0] }));
    s.execute(call({ action: 'vector_upsert', data: { id: 'b', content: 'B', projectId: 'p2' }, vector: [0, 1] }));
    s.execute(call({ action: 'vector_upsert', data: { id: 'a', content: 'A2', projectId: 'p1' }, vector: [1, 1] }));
    const search = (input: object) =>
      (s.execute(call({ action: 'vector_search', ...input })) as { results: Array<{ id: string; content: string; score: number }> })
        .results;

    expect(search({ vector: [1, 0.9] }).map((hit) => [hit.id, hit.content])).toEqual([
      ['a', 'A2'],
      ['b', 'B'],
    ]);
    expect(search({ vector: [1, 0], filters: { projectId: 'p2' } }).map((hit) => hit.id)).toEqual(['b']);
    expect(search({ vector: [1, 0], limit: 1 })).toHaveLength(1);
    expect(cosine([1, 0], [0, 1])).toBe(0);
    expect(cosine([1, 2], [2, 4])).toBeCloseTo(1, 10);
    expect(cosine([0, 0], [1, 1])).toBe(0);
  });
});
