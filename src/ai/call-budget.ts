import { convertToOpenAITool } from '@langchain/core/utils/function_calling';
import { promptTokenBound, type BudgetTicket, type CallActual, type CallEstimate } from '../budget/budget-door';
import type { Pricing } from '../budget/pricing';
import type { ModelRef, ModelTurnRequest, ModelUsage } from './model-turn';

/** The budget door as a model call uses it (src/budget/budget-door.ts). */
export interface CallBudgetDoor {
  forCall(ticket: BudgetTicket, estimate: () => CallEstimate): Promise<{ id: string } | null>;
  settle(reservation: { id: string; userId: string }, actual: CallActual): Promise<void>;
}

/** A turn's reservation with the budget door, and the user it is charged to. */
export interface CallReservation {
  id: string;
  userId: string;
}

/**
 * The budget around one turn: reserved before it is sent, and settled with what its attempts used
 * once it ended, however it ended. Without a door or without `maxTokens` nothing is reserved.
 */
export class CallBudget {
  constructor(
    private readonly pricing: Pricing,
    private readonly door: CallBudgetDoor | undefined,
    /** `max_tokens` a budgeted call reserves and is sent with (`LLM_MAX_TOKENS`). */
    private readonly maxTokens: number | undefined,
  ) {}

  /**
   * Reserves the call before it is sent: the prompt counted from above, the `max_tokens` it is sent
   * with, priced at the dearest model it may fall back to. Throws 429 `budget_exceeded` when a limit
   * would be passed. Null without a door, or for a user without budget limits.
   */
  async reserve(request: ModelTurnRequest, candidates: ModelRef[]): Promise<CallReservation | null> {
    const { door } = this;
    const maxTokens = this.maxTokens === undefined ? undefined : capOf(request.maxTokens, this.maxTokens);
    const ticket = request.budget ?? (request.account ? { userId: request.account.userId } : undefined);
    if (!door || !ticket || maxTokens === undefined) return null;
    // Counted only for a user with limits: the door asks for the estimate once it knows.
    const estimate = (): CallEstimate => {
      const inputTokens = promptTokenBound(promptTexts(request));
      const costUsd = Math.max(...candidates.map((ref) => this.pricing.costOf({ model: ref.model, inputTokens, outputTokens: maxTokens })));
      return { inputTokens, maxTokens, costUsd, requests: 1 };
    };
    const reservation = await door.forCall(ticket, estimate);
    return reservation && { id: reservation.id, userId: ticket.userId };
  }

  /** The `max_tokens` the turn is sent with: a budgeted call the cap it reserved; an unbudgeted one only the request's own, else the provider's default. */
  sentMaxTokens(request: Pick<ModelTurnRequest, 'maxTokens'>, reservation: CallReservation | null): number | undefined {
    return capOf(request.maxTokens, reservation ? this.maxTokens : undefined);
  }

  /**
   * Replaces the reservation by what the turn used: every attempt that cost something, whichever
   * model answered (nothing, when every model failed before answering). One turn is one request,
   * as reserved, however many models it took.
   */
  async settle(reservation: CallReservation, spent: readonly ModelUsage[]): Promise<void> {
    if (!this.door) return;
    const used = spent.reduce(
      (sum, usage) => ({
        inputTokens: sum.inputTokens + usage.inputTokens,
        outputTokens: sum.outputTokens + usage.outputTokens,
        costUsd: sum.costUsd + usage.costUsd,
      }),
      { inputTokens: 0, outputTokens: 0, costUsd: 0 },
    );
    await this.door.settle(reservation, { ...used, requests: spent.length ? 1 : 0 });
  }
}

/** The texts a prompt sends, as a call's reservation counts them: each message's content and each tool's definition. */
export function promptTexts(request: Pick<ModelTurnRequest, 'messages' | 'tools'>): string[] {
  const texts = request.messages.map((message) =>
    typeof message.content === 'string' ? message.content : JSON.stringify(message.content),
  );
  for (const message of request.messages) {
    const calls = (message as { tool_calls?: unknown[] }).tool_calls;
    // An answer without calls carries an empty list, which sends nothing.
    if (calls?.length) texts.push(JSON.stringify(calls));
  }
  for (const tool of request.tools ?? []) texts.push(JSON.stringify(convertToOpenAITool(tool)));
  return texts;
}

/** The lower of two output caps; either may be unset. */
function capOf(requested: number | undefined, configured: number | undefined): number | undefined {
  if (requested === undefined) return configured;
  return configured === undefined ? requested : Math.min(requested, configured);
}
