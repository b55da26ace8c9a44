export default async function globalTeardown(): Promise<void> {
  await (globalThis as { __sbRedis?: { stop(): Promise<void> } }).__sbRedis?.stop();
}
