import { classifyIntent, toolsFor } from '../../src/assistant/orchestrator';
import { dangerousToolPolicy } from '../../src/turns/approvals';
import { allowAllPolicy } from '../../src/turns/tool-policy';
import { loadConfig } from '../../config';
import { ASSISTANT_TOOLS } from '../../src/turns/device-tools';
import { listText, describeTask, toEpochMs, ToolInputError } from '../../src/turns/tool-format';

describe('assistant orchestrator and tools', () => {
  test('the catalogue has the 23 assistant tools, split over four agents', () => {
    expect(ASSISTANT_TOOLS.map((t) => t.name).sort()).toEqual(
      [
        'list_tasks',
        'create_task',
        'update_task',
        'delete_task',
        'list_tasks_due_today',
        'list_task_comments',
        'add_task_comment',
        'delete_task_comment',
        'list_projects',
        'list_all_projects',
        'get_project',
        'create_project',
        'update_project',
        'delete_project',
        'list_checkpoints',
        'create_checkpoint',
        'update_checkpoint',
        'delete_checkpoint',
        'list_notes',
        'get_note',
        'create_note',
        'update_note',
        'delete_note',
      ].sort(),
    );
    expect(toolsFor(['task'])).toHaveLength(8);
    expect(toolsFor(['project'])).toHaveLength(6);
    expect(toolsFor(['checkpoint'])).toHaveLength(4);
    expect(toolsFor(['note'])).toHaveLength(5);
  });

  test.each([
    ['How many todo tasks do I have?', ['task']],
    ['Archive the Acme project', ['project']],
    ['When is the next milestone?', ['checkpoint']],
    ['Show my notes', ['note']],
    ['Which tasks and projects do I have?', ['task', 'project']],
    ["What's on my plate?", ['task', 'project', 'checkpoint', 'note']],
  ])('"%s" routes to %j by keywords', (message, agents) => {
    expect(classifyIntent(message).toolsets).toEqual(agents);
  });

  test('every delete_* tool is dangerous (where approvals will plug in); today the policy allows it', async () => {
    const dangerous = ASSISTANT_TOOLS.map((t) => t.name).filter(allowAllPolicy.isDangerous);
    expect(dangerous.sort()).toEqual(['delete_checkpoint', 'delete_note', 'delete_project', 'delete_task', 'delete_task_comment']);
    await expect(allowAllPolicy.check({ userId: 'u', sessionId: 's', deviceId: 'd', toolName: 'delete_task', args: {} })).resolves.toEqual({
      allowed: true,
    });
  });

  test('the approvals policy marks every delete_* tool plus the ones HITL_DANGEROUS_TOOLS lists', () => {
    const byDefault = dangerousToolPolicy(loadConfig({}).hitl.dangerousTools);
    expect(
      ASSISTANT_TOOLS.map((t) => t.name)
        .filter(byDefault.isDangerous)
        .sort(),
    ).toEqual(['delete_checkpoint', 'delete_note', 'delete_project', 'delete_task', 'delete_task_comment']);
    const configured = dangerousToolPolicy(loadConfig({ HITL_DANGEROUS_TOOLS: 'update_project, create_task' }).hitl.dangerousTools);
    expect(ASSISTANT_TOOLS.map((t) => t.name).filter(configured.isDangerous)).toEqual(
      expect.arrayContaining(['update_project', 'create_task', 'delete_task']),
    );
    expect(configured.isDangerous('list_tasks')).toBe(false);
  });

  test('rows become readable lines with the fields a question needs and the id a follow-up needs', () => {
    const text = listText(
      [{ id: 't1', title: 'Write brief', status: 'todo', priority: 'high', dueDate: Date.parse('2026-03-01') }],
      'task',
      describeTask,
    );
    expect(text).toBe('Found 1 task(s):\n- Write brief (status: todo, priority: high, due: 2026-03-01, id: t1)');
    expect(listText([], 'task', describeTask)).toBe('No tasks found matching the given filters.');
  });

  test('dates are read from ISO strings or epoch ms; anything else is an argument error', () => {
    expect(toEpochMs('2026-03-01', 'due_date')).toBe(Date.parse('2026-03-01'));
    expect(toEpochMs(1_700_000_000_000, 'due_date')).toBe(1_700_000_000_000);
    expect(toEpochMs(null, 'due_date')).toBeNull();
    expect(() => toEpochMs('next tuesday', 'due_date')).toThrow(ToolInputError);
  });
});
