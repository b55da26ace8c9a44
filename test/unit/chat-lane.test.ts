import { MULTITASK_STRATEGIES, planLane, strategyOf } from '../../src/assistant/chat-lane';

describe('the lane plan of a chat session', () => {
  test('with no turn open every strategy starts at once', () => {
    for (const strategy of MULTITASK_STRATEGIES) expect(planLane(strategy, 0)).toEqual({ refuse: false, cancel: 'none', behind: false });
  });

  test('with a turn open: enqueue waits behind it, reject refuses, interrupt and rollback cancel it and wait for its end', () => {
    expect(planLane('enqueue', 1)).toEqual({ refuse: false, cancel: 'none', behind: true });
    expect(planLane('reject', 2)).toEqual({ refuse: true, cancel: 'none', behind: false });
    expect(planLane('interrupt', 1)).toEqual({ refuse: false, cancel: 'interrupt', behind: true });
    expect(planLane('rollback', 3)).toEqual({ refuse: false, cancel: 'rollback', behind: true });
  });

  test("the request's strategy wins over the session's, which wins over the default enqueue", () => {
    expect(strategyOf('reject', 'rollback')).toBe('reject');
    expect(strategyOf(undefined, 'interrupt')).toBe('interrupt');
    expect(strategyOf(undefined, null)).toBe('enqueue');
  });
});
