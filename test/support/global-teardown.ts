type Stoppable = { stop(): Promise<void> };

export default async function globalTeardown(): Promise<void> {
  const servers = globalThis as {
    __sbRedis?: Stoppable;
    __sbPostgres?: Stoppable;
    __sbRedisCluster?: Stoppable;
    __sbRedisSplit?: Stoppable[];
    __sbChromium?: Stoppable;
  };
  await Promise.all([
    servers.__sbRedis?.stop(),
    servers.__sbPostgres?.stop(),
    servers.__sbRedisCluster?.stop(),
    servers.__sbChromium?.stop(),
    ...(servers.__sbRedisSplit ?? []).map((server) => server.stop()),
  ]);
}
