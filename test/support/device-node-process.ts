/**
 * An api node for devices as a process of its own (spawned by the cross-process device test):
 * HTTP + `/device` on the Redis (`DEVICE_NODE_REDIS`: a URL or a cluster's seed list, as JSON) and key
 * prefix given in the environment. Prints one JSON line
 * `{"url", "nodeId"}` once listening; SIGTERM stops it gracefully.
 */
import type { RedisTarget } from '../../src/lib/redis';
import { startDeviceNode } from './device-fixture';

async function main() {
  const node = await startDeviceNode({
    redis: JSON.parse(process.env.DEVICE_NODE_REDIS!) as RedisTarget,
    keyPrefix: process.env.DEVICE_NODE_KEY_PREFIX!,
    http: true,
    heartbeatTtlMs: Number(process.env.DEVICE_NODE_HEARTBEAT_TTL_MS ?? 30_000),
  });
  process.stdout.write(`${JSON.stringify({ url: node.url, nodeId: node.registry.nodeId })}\n`);
  process.once('SIGTERM', () => void node.stop().then(() => process.exit(0)));
}

main().catch((error: unknown) => {
  process.stderr.write(`device node failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
