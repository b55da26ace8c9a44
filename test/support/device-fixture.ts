import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Server } from 'socket.io';
import { signAccessToken, type TokenSettings } from '../../src/auth/tokens';
import { DeviceRegistry } from '../../src/devices/device-registry';
import { DeviceChannel } from '../../src/devices/device-channel';
import type { DeviceRpcMetrics } from '../../src/devices/device-rpc';
import { DEVICE_NAMESPACE } from '../../src/schemas/socket-events';
import { DeviceSimulator, type DeviceSimulatorOptions } from '@switchboard/client/testing';
import { createLogger } from '../../src/lib/logger';
import { createRedis, redisReady, type RedisTarget } from '../../src/lib/redis';
import { WsRelay } from '../../src/devices/ws-relay';
import { registerDeviceNamespace, type DeviceNamespaceHandle } from '../../src/realtime/device-namespace';
import { attachDeviceWebSocket } from '../../src/realtime/device-ws';
import { closeSocketServer, createSocketServer } from '../../src/realtime/socket-server';
import { testRedisTarget } from './database';
import { deleteKeysEverywhere } from './redis';

export const DEVICE_TEST_TOKENS: TokenSettings = {
  secret: new TextEncoder().encode('device-fixture-secret-device-fixture-secret'),
  issuer: 'switchboard',
  audience: 'switchboard-api',
  accessTokenTtlSeconds: 900,
};

/** One Switchboard node as far as devices go: a Socket.IO server on the shared adapter, an RPC, and (api) the `/device` namespace. */
export interface DeviceNode {
  io: Server;
  /** The node's device channel (tool calls, messages, presence signals). */
  channel: DeviceChannel;
  /** The same channel, under the name the RPC tests use. */
  rpc: DeviceChannel;
  registry: DeviceRegistry;
  /** api nodes only. */
  url?: string;
  devices?: DeviceNamespaceHandle;
  hellos: Array<{ userId: string; deviceId: string; agentIds: string[] }>;
  stop(): Promise<void>;
}

/**
 * Builds a node like `startSwitchboard` does: with `http`, an HTTP server with `/device` (the api
 * role); without, a Socket.IO server with no HTTP that only emits (the worker role).
 */
export async function startDeviceNode(options: {
  /** The Redis the nodes share: default the run's (its cluster under TEST_REDIS_CLUSTER=1). */
  redis?: RedisTarget;
  keyPrefix: string;
  http: boolean;
  rpcTimeoutMs?: number;
  metrics?: DeviceRpcMetrics;
  /** How long this node's devices stay listed after it stops heartbeating (crash). */
  heartbeatTtlMs?: number;
}): Promise<DeviceNode> {
  const logger = createLogger({ level: process.env.DEVICE_TEST_LOG_LEVEL ?? 'silent' });
  const target = options.redis ?? testRedisTarget('realtime');
  const redis = createRedis(target, 'command');
  const blocking = createRedis(target, 'blocking');
  await redisReady(redis);
  const httpServer = options.http ? http.createServer() : undefined;
  const io = createSocketServer({ redis: blocking, keyPrefix: options.keyPrefix, httpServer });
  const registry = new DeviceRegistry(redis, options.keyPrefix, { logger, heartbeatTtlMs: options.heartbeatTtlMs });
  const hellos: DeviceNode['hellos'] = [];
  // The relay reaches plain-WebSocket devices held by any node.
  const channel = new DeviceChannel(io, {
    timeoutMs: options.rpcTimeoutMs ?? 30_000,
    logger,
    metrics: options.metrics,
    relay: new WsRelay(redis, options.keyPrefix, logger),
  });
  const devices = options.http
    ? registerDeviceNamespace(channel, {
        tokens: DEVICE_TEST_TOKENS,
        registry,
        logger,
        onDeviceHello: (userId, deviceId, agentIds) => void hellos.push({ userId, deviceId, agentIds }),
      })
    : undefined;
  const webSockets = httpServer
    ? attachDeviceWebSocket(httpServer, {
        tokens: DEVICE_TEST_TOKENS,
        registry,
        channel,
        logger,
        onDeviceHello: (userId, deviceId, agentIds) => void hellos.push({ userId, deviceId, agentIds }),
      })
    : undefined;
  let url: string | undefined;
  if (httpServer) {
    await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', () => resolve()));
    url = `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}`;
  }
  return {
    io,
    channel,
    rpc: channel,
    registry,
    url,
    devices,
    hellos,
    stop: async () => {
      await webSockets?.close();
      await channel.close();
      await devices?.close();
      await closeSocketServer(io);
      await Promise.allSettled([redis.quit(), blocking.quit()]);
    },
  };
}

/**
 * Resolves once every node's `/device` adapter counts `expected` nodes (default: these) and answers
 * a request through Redis. Calls made before that could miss a node that has not been heard yet.
 */
export async function waitForCluster(nodes: Server[], expected = nodes.length): Promise<void> {
  const counts = async () => Promise.all(nodes.map((io) => io.of(DEVICE_NAMESPACE).adapter.serverCount()));
  const deadline = Date.now() + 10_000;
  while ((await counts()).some((count) => count < expected)) {
    if (Date.now() > deadline) throw new Error('socket.io nodes did not see each other within 10 s');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  await Promise.all(nodes.map((io) => io.of(DEVICE_NAMESPACE).fetchSockets()));
}

export interface DeviceFixture {
  /** Where devices connect (the api node). */
  url: string;
  api: DeviceNode;
  /** Same Redis, no HTTP: calls from here cross nodes. */
  worker: DeviceNode;
  keyPrefix: string;
  /** A user of its own with a signed access token. */
  newUser(name?: string): Promise<{ id: string; token: string }>;
  /** Connects a simulator to the api node; closed by `stop()`. */
  connect(user: { token: string }, deviceId: string, options?: Partial<DeviceSimulatorOptions>): Promise<DeviceSimulator>;
  stop(): Promise<void>;
}

/** An api node and a worker node on the test Redis under a key prefix of their own. */
export async function startDeviceFixture(options: { rpcTimeoutMs?: number; metrics?: DeviceRpcMetrics } = {}): Promise<DeviceFixture> {
  const keyPrefix = `dev-${randomUUID().slice(0, 8)}`;
  const shared = { keyPrefix, rpcTimeoutMs: options.rpcTimeoutMs, metrics: options.metrics };
  const api = await startDeviceNode({ ...shared, http: true });
  const worker = await startDeviceNode({ ...shared, http: false });
  await waitForCluster([api.io, worker.io]);
  const simulators: DeviceSimulator[] = [];
  return {
    url: api.url!,
    api,
    worker,
    keyPrefix,
    newUser: async (name = 'Device User') => {
      const id = randomUUID();
      const token = await signAccessToken(DEVICE_TEST_TOKENS, { sub: id, email: `${id}@example.test`, name, tier: 'free', role: 'user' });
      return { id, token };
    },
    connect: async (user, deviceId, extra = {}) => {
      const simulator = await DeviceSimulator.connect({ url: api.url!, accessToken: user.token, deviceId, reconnection: false, ...extra });
      simulators.push(simulator);
      return simulator;
    },
    stop: async () => {
      simulators.forEach((simulator) => simulator.close());
      await Promise.all([api.stop(), worker.stop()]);
      await deleteKeys(keyPrefix);
    },
  };
}

/** Removes what the nodes left under the key prefix on the run's Redis (every master of its cluster). */
export async function deleteKeys(keyPrefix: string): Promise<void> {
  const redis = createRedis(testRedisTarget('realtime'), 'command');
  try {
    await redisReady(redis);
    await deleteKeysEverywhere(redis, `${keyPrefix}:*`);
  } finally {
    redis.disconnect();
  }
}
