import type { BudgetDoor, BudgetTicket, PromptPart } from '../budget/budget-door';
import type { Logger } from '../lib/logger';
import type { McpOffer } from '../mcp/mcp-tools';

/**
 * What a run's first model call may offer of its MCP tools. Its request reserved the call with the
 * tools' sizes as their servers' last listing recorded them (`reserved`); the listing made now may
 * be larger (a server added a tool or grew a description, or had never been listed). Then the
 * reservation is widened to the larger call when the user's budget has room; when it has none, the
 * tools that do not fit what was reserved are left out of the run, so the call never needs more
 * than its request reserved and an admitted request is not refused at its first call. The listing
 * recorded the new sizes, so the next request counts them.
 *
 * Without `reserved` (the request counted no MCP tools: the user has no budget limits) or without
 * a reservation to take over (a resumed run), the offer is kept whole.
 */
export async function fitMcpOffer(
  offer: McpOffer,
  reserved: PromptPart | undefined,
  ticket: BudgetTicket,
  deps: {
    budget?: Pick<BudgetDoor, 'widen'>;
    /** Holds a widened reservation for the run, so the run's end gives it back if no call takes it. */
    hold: (ticket: BudgetTicket) => Promise<unknown>;
    log: Logger;
    /** The model the call goes to first (the reservation is priced at the dearest it may go to). */
    model?: string;
  },
): Promise<McpOffer> {
  const { bytes } = offer;
  if (!reserved || !bytes || !offer.specs.length) return offer;
  const sized = offer.specs.map((spec) => bytes.get(spec.name) ?? 0);
  const total = sized.reduce((sum, size) => sum + size, 0);
  if (total <= reserved.bytes && offer.specs.length <= reserved.texts) return offer;
  const before = ticket.reservationId;
  const extra = { bytes: Math.max(0, total - reserved.bytes), texts: Math.max(0, offer.specs.length - reserved.texts) };
  if (!deps.budget || (await deps.budget.widen(ticket, extra, deps.model))) {
    if (ticket.reservationId !== before) await deps.hold(ticket);
    return offer;
  }
  // No room for the larger call: the tools the request counted are offered, in the servers' order, as far as they fit.
  const kept = new Set<string>();
  let used = 0;
  offer.specs.forEach((spec, i) => {
    if (used + sized[i] <= reserved.bytes && kept.size < reserved.texts) {
      kept.add(spec.name);
      used += sized[i];
    }
  });
  const left = offer.specs.filter((spec) => !kept.has(spec.name)).map((spec) => spec.name);
  deps.log.warn(
    { userId: ticket.userId, left, reservedBytes: reserved.bytes, listedBytes: total },
    'MCP tools left out of this run: their listing grew past what the request reserved and the budget has no room for more',
  );
  return { ...offer, specs: offer.specs.filter((spec) => kept.has(spec.name)) };
}
