import { TOOLS_BY_NAME, type DeviceCall } from '../../src/turns/device-tools';

/**
 * The assistant's delete tools: each asks the device to delete one row of its own table by the id
 * the model gave, and tells the model whether there was such a row.
 */
describe('assistant delete tools', () => {
  const cases = [
    { tool: 'delete_task', arg: 'task_id', table: 'tasks', noun: 'Task' },
    { tool: 'delete_task_comment', arg: 'comment_id', table: 'taskComments', noun: 'Comment' },
    { tool: 'delete_project', arg: 'project_id', table: 'projects', noun: 'Project' },
    { tool: 'delete_checkpoint', arg: 'checkpoint_id', table: 'checkpoints', noun: 'Checkpoint' },
    { tool: 'delete_note', arg: 'note_id', table: 'notes', noun: 'Note' },
  ];

  test.each(cases)('$tool deletes one row of $table and says whether it was there', async ({ tool, arg, table, noun }) => {
    const calls: unknown[] = [];
    const deviceSaying = (deleted: boolean): DeviceCall =>
      (async (call: unknown) => {
        calls.push(call);
        return { deleted };
      }) as DeviceCall;
    const run = TOOLS_BY_NAME.get(tool)!.run;

    expect(await run({ [arg]: 'r-1' }, deviceSaying(true))).toBe(`${noun} r-1 deleted.`);
    expect(await run({ [arg]: 'r-2' }, deviceSaying(false))).toBe(`No ${noun.toLowerCase()} with id r-2 was found; nothing deleted.`);
    expect(calls).toEqual([
      { action: 'delete', table, data: { id: 'r-1' } },
      { action: 'delete', table, data: { id: 'r-2' } },
    ]);
  });
});
