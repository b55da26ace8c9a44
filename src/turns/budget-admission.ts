import type { PromptPart } from '../budget/budget-door';
import type { BudgetDoor } from '../budget/budget-door';

/** What a request that queues model work needs of the budget door: admit its first call, give it back when nothing was queued. */
export type BudgetAdmission = Pick<BudgetDoor, 'admitPrompt' | 'releaseUnused' | 'releaseUnusedQuietly'>;

/**
 * Reserves the first model call of the work `queue` writes and enqueues, before anything is
 * written: a refusal (429 `budget_exceeded`) leaves no row and no job. `queue` is handed the
 * reservation id for its job's `budget`. The reservation is given back when `queue` throws, or when
 * `queued` says the result put no job of its own on the queue (an earlier one answers instead).
 */
export async function admitThenQueue<T>(
  door: BudgetAdmission,
  request: { userId: string; texts: readonly string[]; model?: string; fixed?: PromptPart | (() => Promise<PromptPart>) },
  queue: (budget: string | undefined) => Promise<T>,
  queued: (result: T) => boolean = () => true,
): Promise<T> {
  const reservationId = await door.admitPrompt(request.userId, request.texts, request.model, request.fixed);
  const ticket = { userId: request.userId, reservationId };
  let result: T;
  try {
    result = await queue(reservationId);
  } catch (error) {
    await door.releaseUnusedQuietly(ticket);
    throw error;
  }
  if (!queued(result)) await door.releaseUnused(ticket);
  return result;
}
