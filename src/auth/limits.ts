import { z } from 'zod';
import type { Config, Tier, TierLimits } from '../../config';
import type { TierFeatures, UserLimitOverrides } from '../../config/tiers';
import { AppError } from '../lib/errors';
import { perRequest } from '../lib/request-origin';

/**
 * The one place a user's limits are worked out: the tier's limits from `TIER_LIMITS` with the
 * user's overrides (set by an operator) laid over them. The budget door, the feature gates and
 * `GET /usage/budget` all read limits through here, so they never disagree.
 */

/** A budget limit: a whole number of tokens or requests ≥ 0, or null for unlimited. */
const count = z.number().int().nonnegative().nullable();

/** `PUT /admin/users/:id/limits` and `switchboard users set-limits`: the overrides, every key optional. */
export const limitOverridesSchema = z
  .strictObject({
    tokensPerHour: count.describe('Tokens per UTC hour; null = unlimited'),
    requestsPerHour: count.describe('Model calls per UTC hour; null = unlimited'),
    tokensPerMonth: count.describe('Tokens per UTC month; null = unlimited'),
    costUsdPerMonth: z.number().nonnegative().nullable().describe('USD per UTC month; null = unlimited'),
    requestsPerMonth: count.describe('Model calls per UTC month; null = unlimited'),
    features: z
      .strictObject({ localModels: z.boolean(), cloudAgents: z.boolean(), flows: z.boolean() })
      .partial()
      .describe('Features switched on or off for this user'),
  })
  .partial() satisfies z.ZodType<UserLimitOverrides>;

/** What `resolveLimits` needs of a user: the stored tier and overrides. */
export interface PlanHolder {
  tier: Tier;
  limitOverrides?: UserLimitOverrides | null;
}

/** The limits in effect for `user`: the tier's, then each override key over it (`features` key by key). */
export function resolveLimits(user: PlanHolder, tiers: Config['tiers']): TierLimits {
  const base = tiers[user.tier];
  const overrides = user.limitOverrides;
  if (!overrides) return base;
  const { features, ...budgets } = overrides;
  return { ...base, ...budgets, features: { ...base.features, ...features } };
}

/** 403 `tier_forbidden`: the plan does not include `feature`. */
export const tierForbidden = (feature: keyof TierFeatures) =>
  new AppError(403, 'tier_forbidden', `The plan does not include ${FEATURE_NAMES[feature]}`, { feature });

const FEATURE_NAMES: Record<keyof TierFeatures, string> = {
  localModels: 'local models',
  cloudAgents: 'cloud agents',
  flows: 'flows',
};

/** Provider kinds that run on the operator's or user's own hardware: the `localModels` feature. */
const LOCAL_KINDS = new Set(['ollama', 'lmstudio', 'vllm']);

/** True when the configured provider `name` is a local (self-hosted) one. */
export function isLocalProvider(providers: Config['llm']['providers'], name: string): boolean {
  const provider = providers.find((entry) => entry.name === name);
  return Boolean(provider?.kind && LOCAL_KINDS.has(provider.kind));
}

/** The providers a flow definition chooses: the definition's own `model` and its nodes'. */
function flowModelProviders(definition: unknown): string[] {
  const providerOf = (holder: unknown): string | undefined => {
    const model = typeof holder === 'object' && holder !== null ? (holder as { model?: unknown }).model : undefined;
    const provider = typeof model === 'object' && model !== null ? (model as { provider?: unknown }).provider : undefined;
    return typeof provider === 'string' ? provider : undefined;
  };
  const nodes = typeof definition === 'object' && definition !== null ? (definition as { nodes?: unknown }).nodes : undefined;
  return [providerOf(definition), ...(Array.isArray(nodes) ? nodes.map(providerOf) : [])].filter((p): p is string => p !== undefined);
}

/** A user's plan as stored: what `LimitsResolver.forUser` works limits out from. */
export type StoredPlan = PlanHolder & { updatedAt?: Date };

/** The plans read during the request being served, by user id. */
const requestPlans = perRequest<Map<string, StoredPlan>>();

/**
 * Keeps `plan`, just read from the database for `userId`, for the rest of the request being served
 * (the session check calls it): the request's feature gates and budget door use it instead of
 * reading the user again. Outside a request it does nothing.
 */
export function rememberRequestPlan(userId: string, plan: StoredPlan): void {
  const plans = requestPlans.get();
  if (plans) plans.set(userId, plan);
  else requestPlans.set(new Map([[userId, plan]]));
}

/**
 * Reads a user's plan and works out their limits. The database is read once per request (the
 * session check's read serves the rest of it) and on every call outside one (workers, sockets),
 * so a change applies from the next request.
 */
export class LimitsResolver {
  constructor(
    private readonly deps: {
      users: { findById(id: string): Promise<(PlanHolder & { id: string; updatedAt?: Date }) | null> };
      tiers: Config['tiers'];
      /** The configured model providers, to tell a local one (`localModels`) from a hosted one. */
      providers?: Config['llm']['providers'];
    },
  ) {}

  /**
   * The user's tier and limits in effect, or null when no such user exists. `version` changes when
   * the user's row does (a new tier or overrides): the budget door reads their windows afresh then.
   */
  async forUser(userId: string): Promise<{ tier: Tier; limits: TierLimits; version: number } | null> {
    let user: StoredPlan | null | undefined = requestPlans.get()?.get(userId);
    if (!user) {
      user = await this.deps.users.findById(userId);
      if (user) rememberRequestPlan(userId, user);
    }
    return user && { tier: user.tier, limits: resolveLimits(user, this.deps.tiers), version: user.updatedAt?.getTime() ?? 0 };
  }

  /** Throws 403 `tier_forbidden` unless the user's plan includes `feature`. */
  async requireFeature(userId: string, feature: keyof TierFeatures): Promise<void> {
    const plan = await this.forUser(userId);
    if (!plan?.limits.features[feature]) throw tierForbidden(feature);
  }

  /**
   * Throws 403 `tier_forbidden` when the request chooses a local model provider and the user's
   * plan lacks `localModels`. No choice, or a hosted provider, passes without a database read.
   */
  async requireModelChoice(userId: string, choice: { provider: string } | undefined): Promise<void> {
    if (choice && isLocalProvider(this.deps.providers ?? [], choice.provider)) await this.requireFeature(userId, 'localModels');
  }

  /**
   * `requireModelChoice` for every model a flow definition names (a chatflow's `model`, each
   * agentflow node's `model`): checked when a flow is saved and again when it runs, since the
   * plan may have changed in between. The definition may be unvalidated: what is not a choice is skipped.
   */
  async requireFlowModels(userId: string, definition: unknown): Promise<void> {
    const providers = flowModelProviders(definition);
    if (providers.some((provider) => isLocalProvider(this.deps.providers ?? [], provider)))
      await this.requireFeature(userId, 'localModels');
  }
}

/** A budget window: its kind, when it began and when it resets (UTC clock hour, UTC calendar month). */
export interface BudgetWindowSpan {
  window: 'hour' | 'month';
  start: Date;
  resetsAt: Date;
}

/** The windows every budget counts in at `now`: the current UTC clock hour and UTC calendar month. */
export function budgetWindows(now: Date = new Date()): BudgetWindowSpan[] {
  const hour = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate(), now.getUTCHours()));
  const month = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
  return [
    { window: 'hour', start: hour, resetsAt: new Date(hour.getTime() + 3_600_000) },
    { window: 'month', start: month, resetsAt: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1)) },
  ];
}

/** The limits of one window: tokens for both; requests and cost are monthly only. */
export function windowLimits(limits: TierLimits, window: 'hour' | 'month') {
  return window === 'hour'
    ? { limitTokens: limits.tokensPerHour, limitRequests: limits.requestsPerHour, limitCostUsd: null }
    : { limitTokens: limits.tokensPerMonth, limitRequests: limits.requestsPerMonth, limitCostUsd: limits.costUsdPerMonth };
}
