import { NO_BUDGET, type BudgetDoor, type BudgetTicket } from '../budget/budget-door';
import type { RedisClient } from '../lib/redis';
import { RedisKeys } from '../lib/redis-keys';
import type { RunKindName } from './transitions';

/** Long enough to outlive any reservation (they expire after minutes); the set is only a pointer to them. */
const HOLDINGS_TTL_SECONDS = 2 * 86_400;

export interface RunHoldingsDeps {
  redis: RedisClient;
  keyPrefix: string;
  budget: Pick<BudgetDoor, 'releaseUnused'>;
}

/**
 * The budget reservations each run holds, in Redis so any process can give them back: the one
 * that ends the run, or the reaper after the run's worker died. A run's worker registers the
 * reservation its request took (`hold`); the run kernel gives back, on every terminal move, what
 * no model call took (`releaseAll`). A reservation a call took is settled by that call with what it
 * used, and a release does not touch it, so the ledger stays exact whoever ends the run.
 */
export class RunHoldings {
  private readonly keys: RedisKeys;

  constructor(private readonly deps: RunHoldingsDeps) {
    this.keys = new RedisKeys(deps.keyPrefix);
  }

  /**
   * Registers the reservation of `ticket` as held by the run (nothing for a run without one).
   * True when this call added it; false when the run held it already (its request registered it) or there is none.
   */
  async hold(kind: RunKindName, id: string, ticket: Pick<BudgetTicket, 'userId' | 'reservationId'>): Promise<boolean> {
    if (!ticket.reservationId || ticket.reservationId === NO_BUDGET) return false;
    const key = this.keys.runHoldings(kind, id);
    const replies = await this.deps.redis
      .multi()
      .sadd(key, `${ticket.userId}|${ticket.reservationId}`)
      .expire(key, HOLDINGS_TTL_SECONDS)
      .exec();
    const [error, added] = replies?.[0] ?? [null, 0];
    if (error) throw error;
    return Number(added) === 1;
  }

  /** The reservations the run holds, as tickets. */
  async held(kind: RunKindName, id: string): Promise<BudgetTicket[]> {
    const members = await this.deps.redis.smembers(this.keys.runHoldings(kind, id));
    return members.flatMap((entry) => {
      const [userId, reservationId] = entry.split('|');
      return userId && reservationId ? [{ userId, reservationId }] : [];
    });
  }

  /**
   * Gives back what the run still holds: each reservation no call took is released whole (one a call
   * took or settled is left to that call). Safe to call twice. Throws when a release failed; the
   * set is kept then, and each reservation expires on its own.
   */
  async releaseAll(kind: RunKindName, id: string): Promise<void> {
    const tickets = await this.held(kind, id);
    if (tickets.length === 0) return;
    await Promise.all(tickets.map((ticket) => this.deps.budget.releaseUnused(ticket)));
    await this.deps.redis.del(this.keys.runHoldings(kind, id));
  }
}
