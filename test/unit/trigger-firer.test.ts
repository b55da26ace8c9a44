import { createLogger } from '../../src/lib/logger';
import { AppError } from '../../src/lib/errors';
import { TriggerConcurrencyFull } from '../../src/models/flow-executions-repository';
import type { FlowRow, FlowTriggerRow } from '../../src/models/schema';
import { TriggerFirer } from '../../src/triggers/trigger-firer';

/**
 * The worker side of a fire, on in-memory fakes of its ports: one execution per fire whatever
 * retries or a crash replays, waiting (not failing) on a full concurrency key or the owner's
 * per-minute limit, and refusals a person must act on recorded on the trigger.
 */
describe('TriggerFirer', () => {
  const trigger = (settings: FlowTriggerRow['settings'] = {}): FlowTriggerRow =>
    ({ id: 'tr-1', flowId: 'f-1', userId: 'u-1', type: 'webhook', enabled: true, settings, config: {} }) as unknown as FlowTriggerRow;
  const flow = { id: 'f-1', type: 'agentflow', definition: { nodes: [], output: 'a' } } as unknown as FlowRow;

  function setup(options: { row?: FlowTriggerRow; open?: number; start?: () => Promise<{ executionId: string }> } = {}) {
    const fires = new Map<string, string>();
    const recorded: unknown[] = [];
    const delayed: number[] = [];
    const started: unknown[] = [];
    const firer = new TriggerFirer({
      repos: {
        flowTriggers: {
          find: async () => options.row ?? trigger(),
          executionOfFire: async (_id: string, fire: string) => fires.get(fire) ?? null,
          openExecutions: async () => options.open ?? 0,
          recordFire: async (_id: string, outcome: unknown) => void recorded.push(outcome),
        },
        flows: { find: async () => flow },
      } as never,
      executions: {
        start: async (_user, _flow, _input, how) => {
          const origin = how?.trigger;
          started.push(origin);
          const result = options.start ? await options.start() : { executionId: `ex-${started.length}` };
          fires.set(origin!.fire, result.executionId);
          return result;
        },
      },
      limits: {
        forUser: async () => ({ tier: 'free', limits: {} as never, version: 1 }),
        requireFeature: async () => undefined,
        requireFlowModels: async () => undefined,
      },
      logger: createLogger({ level: 'silent' }),
    });
    const job = { id: 'j-1', token: 't', moveToDelayed: async (at: number) => void delayed.push(at - Date.now()) };
    return { firer, job, recorded, delayed, started, fires };
  }
  const payload = { triggerId: 'tr-1', userId: 'u-1', fire: 'hook-abc', input: { customerId: 'c-1' } };

  test('a fire run again (a retry after a crash) finds the execution it started instead of starting another', async () => {
    const { firer, job, started } = setup();
    expect(await firer.process(payload, job)).toEqual({ executionId: 'ex-1' });
    expect(await firer.process(payload, job)).toEqual({ executionId: 'ex-1', again: true });
    expect(started).toHaveLength(1);
  });

  test("two workers racing on one fire: the loser of the unique insert reports the winner's execution", async () => {
    const { firer, job, fires } = setup({
      start: async () => {
        fires.set('hook-abc', 'ex-winner');
        throw Object.assign(new Error('duplicate key'), { code: '23505' });
      },
    });
    expect(await firer.process(payload, job)).toEqual({ executionId: 'ex-winner', again: true });
  });

  test('a full concurrency key (looked up, or found full at the insert) delays the job; the key value is passed on', async () => {
    const keyed = trigger({ concurrency: { key: '{{input.customerId}}', limit: 1 } });
    const full = setup({ row: keyed, open: 1 });
    await expect(full.firer.process(payload, full.job)).rejects.toHaveProperty('name', 'DelayedError');
    expect(full.started).toHaveLength(0);
    expect(full.delayed[0]).toBeGreaterThan(1_000);

    const raced = setup({ row: keyed, start: async () => Promise.reject(new TriggerConcurrencyFull(1)) });
    await expect(raced.firer.process(payload, raced.job)).rejects.toHaveProperty('name', 'DelayedError');
    expect(raced.started).toEqual([{ triggerId: 'tr-1', fire: 'hook-abc', concurrencyKey: 'c-1', limit: 1 }]);
  });

  test("the owner's per-minute limit delays the fire by its Retry-After; a spent budget is recorded, not retried", async () => {
    const limited = setup({
      start: async () => Promise.reject(new AppError(429, 'rate_limited', 'slow down', undefined, { 'Retry-After': '7' })),
    });
    await expect(limited.firer.process(payload, limited.job)).rejects.toHaveProperty('name', 'DelayedError');
    expect(limited.delayed[0]).toBeGreaterThan(6_000);

    const spent = setup({ start: async () => Promise.reject(new AppError(429, 'budget_exceeded', 'over budget')) });
    expect(await spent.firer.process(payload, spent.job)).toEqual({ failed: 'budget_exceeded' });
    expect(spent.recorded).toEqual([{ code: 'budget_exceeded', message: 'over budget' }]);
  });

  test('a trigger deleted or disabled before its fire ran starts nothing', async () => {
    const off = setup({ row: { ...trigger(), enabled: false } });
    expect(await off.firer.process(payload, off.job)).toEqual({ skipped: 'trigger_disabled' });
    expect(off.started).toHaveLength(0);
  });
});
