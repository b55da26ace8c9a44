import { request } from '../support/http';
import { untilPrinted } from '../support/processes';
import type { CanvasClient } from '../support/sockets';
import { generateKillingItsWorker, useCluster } from '../support/cluster';
import { eventually } from '../support/wait';

const PROMPT = 'Plan the launch: a heading, three todos (book venue, invite press, ship beta) and a short paragraph';

/**
 * kill -9 of the worker in the middle of a budgeted model call: the retry on the survivor reserves
 * anew, and the dead call's reservation does not stay held: once past its deadline the reaper
 * settles it (charged in full, since the provider may have billed it), so nothing stays reserved.
 */
describe('a worker killed in the middle of a budgeted model call', () => {
  const cluster = useCluster('budget-crash', {
    WORKER_LOCK_MS: '2000',
    DEMO_LLM_DELAY_MS: '150',
    LOG_LEVEL: 'info',
    REAPER_INTERVAL_MS: '500',
    BUDGET_RESERVATION_TTL_MS: '4000',
    LLM_MAX_TOKENS: '2000',
    TIER_LIMITS: JSON.stringify({ free: { tokensPerHour: 1_000_000 } }),
  });

  const sockets: CanvasClient[] = [];
  afterAll(() => sockets.forEach((socket) => socket.close()));

  test('the generation completes on the survivor and the orphaned reservation is settled by the reaper', async () => {
    const { workerA, workerB, base, user, canvasId, clients } = await cluster.apiWorkersAndWatchers('BudgetCrash');
    sockets.push(...clients);

    // At the first block, the worker that logged the start of this generation is killed.
    const { sse, killed, survivor } = await generateKillingItsWorker(base, user.accessToken, canvasId, [workerA, workerB], PROMPT);
    expect(killed).toBeDefined();
    expect(sse.messages.at(-1)?.event).toBe('complete');

    const hourOf = async () => {
      const budget = await request('GET', `${base}/usage/budget`, { token: user.accessToken });
      return budget.body.windows.find((window: { window: string }) => window.window === 'hour');
    };
    // The dead call's reservation is still held until its deadline; then the reaper settles it.
    const settled = await eventually(hourOf, (hour) => hour.reservedTokens === 0, 30_000);
    await untilPrinted(survivor, 'an expired budget reservation was settled by the reaper');
    // Charged in full: used counts the dead call's reservation on top of what the survivor's call recorded.
    expect(settled.usedTokens).toBeGreaterThanOrEqual(2_000);
  }, 90_000);
});
