import type { Logger } from '../lib/logger';
import type { CallUsage } from './call-usage';
import type { AttemptProgress, AttemptTurn } from './model-attempt';
import { isAuthRefusal, ModelAuthFailedError, ModelCallCancelled, ModelStoppedEarly, ModelUnavailableError } from './model-errors';
import type { ModelRef, ModelTurn, ModelTurnRequest, ModelUsage } from './model-turn';

/**
 * How many more times a model whose stream failed once open (an error after HTTP 200, a stall) is
 * asked before the next model of the chain: the request itself was accepted, so the failure is
 * most likely the provider's passing trouble. A request refused before its stream opened has had
 * the client's retries already.
 */
const MID_STREAM_RETRIES = 1;

/** One call to one model, which reports its progress in `delivered` even when it throws. */
export type Attempt = (ref: ModelRef, delivered: AttemptProgress) => Promise<AttemptTurn>;

/** The models a turn may be answered by, in order: the request's own choice first, then the rest of the chain. */
export function candidatesFor(request: Pick<ModelTurnRequest, 'model'>, chain: ModelRef[]): ModelRef[] {
  const chosen = request.model;
  return chosen ? [chosen, ...chain.filter((ref) => ref.provider !== chosen.provider || ref.model !== chosen.model)] : chain;
}

/**
 * Fallback and retry across models: asks each candidate in turn until one answers, retries a stream
 * that failed once open on the same model, skips the other models of a provider that refused its
 * key, and records the usage of every attempt that cost something. A cancel, a stop on the
 * provider's `finish_reason` and a failure after output went out (unless the request can restart)
 * end the turn at once.
 */
export class ModelFallback {
  constructor(
    private readonly usage: CallUsage,
    private readonly logger?: Pick<Logger, 'warn'>,
  ) {}

  /**
   * The first answer of the candidates. Each attempt that cost something is pushed on `spent`, in
   * order, whether the turn answers or throws, so the caller can settle the budget with it.
   * Throws ModelAuthFailedError when a provider refused its key, else ModelUnavailableError when no
   * model answered.
   */
  async firstAnswer(candidates: ModelRef[], request: ModelTurnRequest, spent: ModelUsage[], attempt: Attempt): Promise<ModelTurn> {
    let lastError: unknown;
    // A provider that refused its key is not asked again for another of its models (same key).
    let refusedKey: unknown;
    const refusedProviders = new Set<string>();
    for (const ref of candidates) {
      if (refusedProviders.has(ref.provider)) continue;
      for (let retry = 0; retry <= MID_STREAM_RETRIES; retry += 1) {
        const delivered: AttemptProgress = { opened: false, any: false };
        try {
          const turn = await attempt(ref, delivered);
          spent.push(turn.usage);
          const unrecorded = this.usage.leftToCaller(request, turn);
          if (unrecorded) return { ...turn, spent, unrecorded };
          await this.usage.record(request, turn.usage);
          return { ...turn, spent };
        } catch (error) {
          if (error instanceof ModelCallCancelled || error instanceof ModelStoppedEarly) {
            spent.push(error.usage);
            // What an aborted, filtered or cut call spent is still the user's usage.
            // The cancellation rethrown below is what the caller handles: a failed usage write is logged, not thrown over it.
            await this.usage.recordBeside(request, error.usage);
            throw error;
          }
          // A model that failed after streaming output was paid for what it streamed: its own line.
          const partial = delivered.any ? delivered.usage?.() : undefined;
          if (partial) {
            spent.push(partial);
            // The model's failure handled below is what matters: a failed usage write is logged, not thrown over it.
            await this.usage.recordBeside(request, partial);
          }
          if (request.signal?.aborted) throw error;
          if (delivered.any && !request.onRestart) throw error;
          if (delivered.any) request.onRestart?.();
          lastError = error;
          if (isAuthRefusal(error)) {
            refusedKey = error;
            refusedProviders.add(ref.provider);
            this.logger?.warn(
              { err: error, provider: ref.provider, model: ref.model },
              'model provider refused the API key; fix the key of this provider',
            );
          }
          // Refused before its stream opened: the client retried it already; the next model is tried.
          if (!delivered.opened) break;
          this.logger?.warn({ err: error, provider: ref.provider, model: ref.model, attempt: retry + 1 }, 'model stream failed once open');
        }
      }
    }
    const models = candidates.map((ref) => `${ref.provider}:${ref.model}`);
    // A refused key needs an operator, whatever else failed: that is what the run ends with.
    if (refusedKey !== undefined) throw new ModelAuthFailedError(refusedKey, models, [...spent]);
    throw new ModelUnavailableError(lastError, models, [...spent]);
  }
}
