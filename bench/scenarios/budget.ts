import { LimitsResolver } from '../../src/auth/limits';
import { createLogger } from '../../src/lib/logger';
import { createRedis, redisReady } from '../../src/lib/redis';
import { BudgetDoor } from '../../src/budget/budget-door';
import { registerUser } from '../../test/support/http';
import type { BenchContext } from '../lib/context';
import { uniquePrefix, startInProcessSwitchboard } from '../lib/harness';
import { startBulkModel } from '../lib/models';
import { round, summarize } from '../lib/stats';

export interface BudgetOptions {
  /** Admissions timed per user kind. */
  admissions: number;
  warmups: number;
}

/**
 * What the budget door adds before a generation is queued: `admitPrompt` (the plan read, then the
 * reservation script across the hour and month windows) and the give-back, timed on the app's own
 * database and Redis, for a user with budget limits and for one without (who costs the plan read
 * only). The floor is that plan read alone: the primary-key select every gate already pays.
 */
export async function budgetScenario(ctx: BenchContext, options: BudgetOptions) {
  const keyPrefix = uniquePrefix('budget');
  const model = await startBulkModel(1);
  const tiers = { free: { tokensPerHour: 1_000_000_000, tokensPerMonth: 1_000_000_000, requestsPerMonth: 1_000_000_000 } };
  const app = await startInProcessSwitchboard({
    redis: ctx.redis,
    keyPrefix,
    dataDir: ctx.dataDir,
    endpoint: model.endpoint,
    env: { TIER_LIMITS: JSON.stringify(tiers) },
  });
  const redis = createRedis(ctx.redis.target, 'command');
  try {
    await redisReady(redis);
    const [limited, unlimited] = [await registerUser(app.api, 'Budgeted'), await registerUser(app.api, 'Unlimited')];
    await app.repos.users.changePlan(
      unlimited.id,
      { limitOverrides: { tokensPerHour: null, tokensPerMonth: null, requestsPerMonth: null } },
      {
        actorId: limited.id,
      },
    );
    const limits = new LimitsResolver({ users: app.repos.users, tiers: app.config.tiers });
    const door = new BudgetDoor({
      redis,
      keyPrefix,
      limits,
      usage: app.repos.usage,
      logger: createLogger({ level: 'silent' }),
      calls: { maxTokens: app.config.llm.maxTokens, pricing: app.config.llm.pricing, defaultModel: app.config.llm.model },
    });
    const prompt = 'Write 200 paragraphs about the quarterly plan';
    const time = async (userId: string) => {
      const admit: number[] = [];
      const release: number[] = [];
      for (let i = 0; i < options.warmups + options.admissions; i += 1) {
        const started = performance.now();
        const reservationId = await door.admitPrompt(userId, [prompt]);
        const admitted = performance.now();
        await door.releaseUnused({ userId, reservationId });
        if (i < options.warmups) continue;
        admit.push(admitted - started);
        release.push(performance.now() - admitted);
      }
      return { admit: summarize(admit, 3), release: summarize(release, 3) };
    };
    const floor: number[] = [];
    for (let i = 0; i < options.warmups + options.admissions; i += 1) {
      const started = performance.now();
      await limits.forUser(limited.id);
      if (i >= options.warmups) floor.push(performance.now() - started);
    }
    const withLimits = await time(limited.id);
    const withoutLimits = await time(unlimited.id);
    const planRead = summarize(floor, 3);
    ctx.log(
      `budget: admit p50 ${round(withLimits.admit.p50)} ms with limits, ${round(withoutLimits.admit.p50)} ms without; plan read alone ${round(planRead.p50)} ms`,
    );
    return {
      config: { admissions: options.admissions, warmups: options.warmups, database: 'PGlite in memory', redis: 'the run’s redis-server' },
      admitP50Ms: round(withLimits.admit.p50),
      admitP99Ms: round(withLimits.admit.p99),
      releaseP50Ms: round(withLimits.release.p50),
      unlimitedAdmitP50Ms: round(withoutLimits.admit.p50),
      planReadP50Ms: round(planRead.p50),
      /** What a budgeted user's generation start pays beyond an unbudgeted one's: the reservation script and its set entry. */
      addedP50Ms: round(withLimits.admit.p50 - withoutLimits.admit.p50, 3),
    };
  } finally {
    redis.disconnect();
    await app.stop();
    await model.close();
  }
}
