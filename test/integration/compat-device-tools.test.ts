import { randomUUID } from 'node:crypto';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, type TestUser } from '../support/http';
import { WsDevice, type Frame } from '../support/ws-device';
import { unframed } from '../support/scripted-llm';

/**
 * The desktop app's tools end to end, each called by the model with the argument names the app's
 * design gives them, run on a device that answers `tool_call` frames the way the app's Electron
 * side does (its action table over its SQLite schema, written below from that table alone): a
 * column the schema does not have is an error, as Drizzle would raise it. So a field name the
 * server gets wrong comes back as an error the test sees.
 */

/** The app's local tables and their columns (camelCase, as Drizzle names them). */
const SCHEMA: Record<string, string[]> = {
  tasks: [
    'id',
    'projectId',
    'title',
    'description',
    'status',
    'priority',
    'assignee',
    'dueDate',
    'isAiSuggested',
    'isApproved',
    'createdAt',
  ],
  projects: ['id', 'clientId', 'name', 'status', 'aiSummary', 'createdAt'],
  checkpoints: ['id', 'projectId', 'title', 'date', 'isAiSuggested', 'isApproved', 'createdAt'],
  notes: ['id', 'projectId', 'title', 'content', 'createdAt', 'updatedAt'],
  taskComments: ['id', 'taskId', 'author', 'content', 'createdAt'],
  clients: ['id', 'parentId', 'name', 'industry', 'createdAt'],
};
/** Filters the app reads besides column equality: ranges, archived projects, ordering, search. */
const SPECIAL_FILTERS = new Set(['dueDateFrom', 'dueDateTo', 'includeArchived', 'orderBy', 'search']);

type Row = Record<string, unknown>;

/** The Electron side: `select get insert update delete` as its action table describes them. */
class AppDatabase {
  readonly tables: Record<string, Row[]> = Object.fromEntries(Object.keys(SCHEMA).map((table) => [table, []]));

  seed(table: string, row: Row): Row {
    const stored = { createdAt: Date.now(), ...row };
    this.tables[table].push(stored);
    return stored;
  }

  private columns(table: string, keys: string[], allowed = new Set<string>()): void {
    if (!SCHEMA[table]) throw new Error(`no such table: ${table}`);
    for (const key of keys) if (!SCHEMA[table].includes(key) && !allowed.has(key)) throw new Error(`no such column: ${table}.${key}`);
  }

  execute(call: Frame): Row {
    const { id, action, table, data = {}, filters = {} } = call;
    try {
      if (action === 'select') {
        this.columns(table, Object.keys(filters), SPECIAL_FILTERS);
        const rows = this.tables[table].filter((row) =>
          Object.entries(filters).every(([key, value]) => {
            if (key === 'dueDateFrom') return typeof row.dueDate === 'number' && row.dueDate >= (value as number);
            if (key === 'dueDateTo') return typeof row.dueDate === 'number' && row.dueDate <= (value as number);
            if (key === 'includeArchived') return value || row.status !== 'archived';
            if (key === 'orderBy' || key === 'search') return true;
            return row[key] === value;
          }),
        );
        return { id, rows };
      }
      if (action === 'get') return { id, row: this.tables[table].find((row) => row.id === data.id) ?? null };
      if (action === 'insert') {
        this.columns(table, Object.keys(data));
        if ('id' in data || 'createdAt' in data) throw new Error('the backend never sends id or createdAt');
        const row = { id: randomUUID(), ...data, createdAt: Date.now(), updatedAt: Date.now() };
        this.tables[table].push(row);
        return { id, row };
      }
      if (action === 'update') {
        this.columns(table, Object.keys(data.updates ?? {}));
        const row = this.tables[table].find((candidate) => candidate.id === data.id);
        if (!row) return { id, row: null };
        Object.assign(row, data.updates, { updatedAt: Date.now() });
        return { id, row };
      }
      if (action === 'delete') {
        const before = this.tables[table].length;
        this.tables[table] = this.tables[table].filter((row) => row.id !== data.id);
        return { id, deleted: this.tables[table].length < before };
      }
      throw new Error(`unknown action ${String(action)}`);
    } catch (error) {
      return { id, error: (error as Error).message };
    }
  }
}

describe("the desktop app's 23 tools: the 15 no other test runs, end to end on the app's frames", () => {
  let t: TestApp;
  let user: TestUser;
  let device: WsDevice;
  const db = new AppDatabase();
  const ids = { task: randomUUID(), comment: randomUUID(), project: randomUUID(), archived: randomUUID(), gone: randomUUID() };
  const more = { client: randomUUID(), checkpoint: randomUUID(), note: randomUUID() };

  beforeAll(async () => {
    t = await startTestApp({ env: { DEVICE_RPC_TIMEOUT_MS: '5000', HITL_TIMEOUT_MS: '60000' } });
    user = await registerUser(t.api, 'Freelancer');
    db.seed('clients', { id: more.client, name: 'Acme' });
    db.seed('projects', { id: ids.project, clientId: more.client, name: 'Launch', status: 'active' });
    db.seed('projects', { id: ids.archived, name: 'Old site', status: 'archived' });
    db.seed('projects', { id: ids.gone, name: 'Cancelled idea', status: 'active' });
    db.seed('tasks', { id: ids.task, projectId: ids.project, title: 'Write brief', status: 'todo', priority: 'high', dueDate: Date.now() });
    db.seed('tasks', { id: randomUUID(), title: 'Next month', status: 'todo', priority: 'low', dueDate: Date.now() + 40 * 86_400_000 });
    db.seed('taskComments', { id: ids.comment, taskId: ids.task, author: 'Ana', content: 'First draft attached' });
    db.seed('checkpoints', {
      id: more.checkpoint,
      projectId: ids.project,
      title: 'Alpha',
      date: Date.now(),
      isAiSuggested: 0,
      isApproved: 0,
    });
    db.seed('notes', { id: more.note, projectId: ids.project, title: 'Kickoff', content: '# Kickoff\n- scope agreed' });

    device = await WsDevice.hello(t.url, user.accessToken, `laptop-${randomUUID().slice(0, 6)}`);
    device.onToolCall = (call) => db.execute(call);
    // The app approves every dangerous call it is asked about, as its user would.
    device.ws.on('message', (raw) => {
      const frame = JSON.parse(String(raw)) as Frame;
      if (frame.type === 'approval_requested') device.send({ type: 'tool_approval', approval_id: frame.approval_id, approved: true });
    });
    device.send({ type: 'ping' });
    await device.next('pong');
  });

  afterAll(async () => {
    device?.close();
    await t.stop();
  });

  /**
   * The model calls `tool` with `args` for a message routed to its toolset; resolves with the
   * `tool_call` frames the device got for it and what the tool gave the model.
   */
  async function callTool(
    message: string,
    tool: string,
    args: Record<string, unknown>,
  ): Promise<{ calls: Frame[]; result: string; approvals: Frame[] }> {
    t.llm.push({ toolCalls: [{ name: tool, args }] }, { text: `Done with ${tool}.` });
    const from = device.frames.length;
    device.send({ type: 'chat_request', message });
    const final = await device.next('final', () => true, { from });
    expect(final.response).toBe(`Done with ${tool}.`);
    const request = t.llm.chatRequests().at(-1)!;
    const toolMessage = request.messages.filter((m) => m.role === 'tool').at(-1)!;
    const since = device.frames.slice(from);
    return {
      calls: since.filter((frame) => frame.type === 'tool_call'),
      result: unframed(String(toolMessage.content)),
      approvals: since.filter((frame) => frame.type === 'approval_requested'),
    };
  }

  const row = (table: string, id: string) => db.tables[table].find((candidate) => candidate.id === id);

  test("update_task(task_id, title, status, priority, due_date): update tasks {id, updates} in the app's columns", async () => {
    const { calls, result } = await callTool('Move the brief task along', 'update_task', {
      task_id: ids.task,
      title: 'Write the brief',
      status: 'in_progress',
      priority: 'medium',
      due_date: '2030-01-15',
    });
    expect(result).toMatch(/^Task updated: /);
    expect(calls).toEqual([
      expect.objectContaining({
        action: 'update',
        table: 'tasks',
        data: {
          id: ids.task,
          updates: { title: 'Write the brief', status: 'in_progress', priority: 'medium', dueDate: Date.parse('2030-01-15') },
        },
      }),
    ]);
    expect(row('tasks', ids.task)).toMatchObject({ title: 'Write the brief', status: 'in_progress', dueDate: Date.parse('2030-01-15') });
    // Back to today for the next test.
    Object.assign(row('tasks', ids.task)!, { dueDate: Date.now() });
  });

  test('list_tasks_due_today(): select tasks between dueDateFrom and dueDateTo', async () => {
    const { calls, result } = await callTool('Which tasks are due today?', 'list_tasks_due_today', {});
    expect(calls).toEqual([
      expect.objectContaining({
        action: 'select',
        table: 'tasks',
        filters: { dueDateFrom: expect.any(Number), dueDateTo: expect.any(Number) },
      }),
    ]);
    expect(result).toContain('Write the brief');
    expect(result).not.toContain('Next month');
  });

  test('list_task_comments(task_id): select taskComments by taskId', async () => {
    const { calls, result } = await callTool('Show the comments on the brief task', 'list_task_comments', { task_id: ids.task });
    expect(calls).toEqual([expect.objectContaining({ action: 'select', table: 'taskComments', filters: { taskId: ids.task } })]);
    expect(result).toContain('First draft attached');
  });

  test('add_task_comment(task_id, author, content): insert taskComments', async () => {
    const { calls, result } = await callTool('Comment on the brief task', 'add_task_comment', {
      task_id: ids.task,
      author: 'Ana',
      content: 'Reviewed, two edits',
    });
    expect(result).toMatch(/^Comment added to task /);
    expect(calls).toEqual([
      expect.objectContaining({
        action: 'insert',
        table: 'taskComments',
        data: { taskId: ids.task, author: 'Ana', content: 'Reviewed, two edits' },
      }),
    ]);
    expect(db.tables.taskComments.map((comment) => comment.content)).toContain('Reviewed, two edits');
  });

  test('delete_task_comment(comment_id): approved on the app, then delete taskComments {id}', async () => {
    const { calls, result, approvals } = await callTool('Delete the first comment on the task', 'delete_task_comment', {
      comment_id: ids.comment,
    });
    expect(result).toBe(`Comment ${ids.comment} deleted.`);
    expect(approvals.map((frame) => frame.tool_name)).toEqual(['delete_task_comment']);
    expect(calls).toEqual([expect.objectContaining({ action: 'delete', table: 'taskComments', data: { id: ids.comment } })]);
    expect(row('taskComments', ids.comment)).toBeUndefined();
  });

  test('list_all_projects(): select projects without filters, archived ones included', async () => {
    const { calls, result } = await callTool('List every project', 'list_all_projects', {});
    expect(calls).toEqual([expect.objectContaining({ action: 'select', table: 'projects' })]);
    expect(calls[0].filters ?? {}).toEqual({});
    expect(result).toContain('Launch');
    expect(result).toContain('Old site');
  });

  test('create_project(name, client_id): insert projects {name, clientId}', async () => {
    const { calls, result } = await callTool('Create a project for Acme', 'create_project', { name: 'Website', client_id: more.client });
    expect(result).toMatch(/^Project created: 'Website'/);
    expect(calls).toEqual([
      expect.objectContaining({ action: 'insert', table: 'projects', data: { name: 'Website', clientId: more.client } }),
    ]);
    expect(db.tables.projects.find((project) => project.name === 'Website')).toMatchObject({ clientId: more.client });
  });

  test('update_project(project_id, status, ai_summary): update projects {status, aiSummary}', async () => {
    const { calls, result } = await callTool('Archive the launch project', 'update_project', {
      project_id: ids.project,
      status: 'archived',
      ai_summary: 'Launched in March',
    });
    expect(result).toMatch(/^Project updated: /);
    expect(calls).toEqual([
      expect.objectContaining({
        action: 'update',
        table: 'projects',
        data: { id: ids.project, updates: { status: 'archived', aiSummary: 'Launched in March' } },
      }),
    ]);
    expect(row('projects', ids.project)).toMatchObject({ status: 'archived', aiSummary: 'Launched in March' });
  });

  test('delete_project(project_id): approved on the app, then delete projects {id}', async () => {
    const { calls, result, approvals } = await callTool('Delete the cancelled project', 'delete_project', { project_id: ids.gone });
    expect(result).toBe(`Project ${ids.gone} deleted.`);
    expect(approvals.map((frame) => frame.tool_name)).toEqual(['delete_project']);
    expect(calls).toEqual([expect.objectContaining({ action: 'delete', table: 'projects', data: { id: ids.gone } })]);
    expect(row('projects', ids.gone)).toBeUndefined();
  });

  test('list_checkpoints(project_id): select checkpoints by projectId', async () => {
    const { calls, result } = await callTool('Which checkpoints does the launch have?', 'list_checkpoints', { project_id: ids.project });
    expect(calls).toEqual([
      expect.objectContaining({ action: 'select', table: 'checkpoints', filters: expect.objectContaining({ projectId: ids.project }) }),
    ]);
    expect(result).toContain('Alpha');
  });

  test('create_checkpoint(project_id, title, date): insert checkpoints {projectId, title, date}', async () => {
    const { calls, result } = await callTool('Add a beta checkpoint', 'create_checkpoint', {
      project_id: ids.project,
      title: 'Beta',
      date: '2030-02-01',
    });
    expect(result).toMatch(/^Checkpoint created: /);
    expect(calls).toEqual([
      expect.objectContaining({
        action: 'insert',
        table: 'checkpoints',
        data: expect.objectContaining({ projectId: ids.project, title: 'Beta', date: Date.parse('2030-02-01') }),
      }),
    ]);
    expect(db.tables.checkpoints.find((checkpoint) => checkpoint.title === 'Beta')).toMatchObject({ projectId: ids.project });
  });

  test('update_checkpoint(checkpoint_id, title, is_approved): update checkpoints {title, isApproved: 1}', async () => {
    const { calls, result } = await callTool('Approve the alpha checkpoint', 'update_checkpoint', {
      checkpoint_id: more.checkpoint,
      title: 'Alpha release',
      is_approved: true,
    });
    expect(result).toMatch(/^Checkpoint updated: /);
    expect(calls).toEqual([
      expect.objectContaining({
        action: 'update',
        table: 'checkpoints',
        data: { id: more.checkpoint, updates: { title: 'Alpha release', isApproved: 1 } },
      }),
    ]);
    expect(row('checkpoints', more.checkpoint)).toMatchObject({ title: 'Alpha release', isApproved: 1 });
  });

  test('delete_checkpoint(checkpoint_id): approved on the app, then delete checkpoints {id}', async () => {
    const { calls, result, approvals } = await callTool('Delete the alpha checkpoint', 'delete_checkpoint', {
      checkpoint_id: more.checkpoint,
    });
    expect(result).toBe(`Checkpoint ${more.checkpoint} deleted.`);
    expect(approvals.map((frame) => frame.tool_name)).toEqual(['delete_checkpoint']);
    expect(calls).toEqual([expect.objectContaining({ action: 'delete', table: 'checkpoints', data: { id: more.checkpoint } })]);
    expect(row('checkpoints', more.checkpoint)).toBeUndefined();
  });

  test('get_note(note_id): get notes {id}, the full markdown', async () => {
    const { calls, result } = await callTool('Open the kickoff note', 'get_note', { note_id: more.note });
    expect(calls).toEqual([expect.objectContaining({ action: 'get', table: 'notes', data: { id: more.note } })]);
    expect(result).toContain('# Kickoff\n- scope agreed');
  });

  test('delete_note(note_id): approved on the app, then delete notes {id}', async () => {
    const { calls, result, approvals } = await callTool('Delete the kickoff note', 'delete_note', { note_id: more.note });
    expect(result).toBe(`Note ${more.note} deleted.`);
    expect(approvals.map((frame) => frame.tool_name)).toEqual(['delete_note']);
    expect(calls).toEqual([expect.objectContaining({ action: 'delete', table: 'notes', data: { id: more.note } })]);
    expect(row('notes', more.note)).toBeUndefined();
  });

  test("the test's app database refuses a column its schema does not have, so a wrong field name fails the tests above", () => {
    expect(db.execute({ type: 'tool_call', id: 'x', action: 'insert', table: 'tasks', data: { due_date: 1 } })).toEqual({
      id: 'x',
      error: 'no such column: tasks.due_date',
    });
  });
});
