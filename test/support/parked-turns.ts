import { randomUUID } from 'node:crypto';
import type { DeviceSimulator } from '@switchboard/client/testing';
import { demoResponder } from '../../src/demo-model';
import { startSwitchboard, type RunningSwitchboard } from '../../src/app/switchboard';
import { createLogger } from '../../src/lib/logger';
import type { RedisConnections } from '../../src/lib/redis';
import { QueueRegistry } from '../../src/producers/registry';
import type { ApprovalRequested } from '../../src/schemas/socket-events';
import { startTestApp, testConfig, type TestApp } from './app';
import { createTestDatabase, serverPostgresUrl } from './database';
import { nextDeviceEvent } from './device-events';
import { testRedisConnections } from './redis';
import { startScriptedLLM, type ScriptedLLM } from './scripted-llm';

/** The device's task that the turns of these tests ask to delete: a delete waits for its approval. */
export const TASK_ID = '3f2b8c1e-9d4a-4b6e-8f00-1234567890ab';
export const seed = { tasks: [{ id: TASK_ID, title: 'Old report', status: 'done' as const, priority: 'low' as const }] };

/** A device's `final`. */
export interface Final {
  sessionId: string;
  response: string;
}

/** Asks for the delete from the device: the turn parks on its approval. */
export async function askForDelete(device: DeviceSimulator) {
  const approval = nextDeviceEvent<ApprovalRequested>(device, 'approval_requested');
  const ack = (await device.socket.timeout(5_000).emitWithAck('chat_request', { message: `Delete task ${TASK_ID}` })) as {
    sessionId: string;
    messageId: string;
  };
  return { ...ack, approval: await approval };
}

/**
 * The suite's app on the demo model, with `env`, and a queue registry on its Redis to look at its
 * jobs; the devices pushed to `devices` are closed after the suite. Read `t` and `queues` in tests.
 */
export function useParkingApp(env: Record<string, string>) {
  let t: TestApp | undefined;
  let redis: RedisConnections | undefined;
  let queues: QueueRegistry | undefined;
  const devices: DeviceSimulator[] = [];
  beforeAll(async () => {
    t = await startTestApp({ responder: demoResponder, env });
    redis = testRedisConnections();
    await redis.ready();
    queues = new QueueRegistry(redis.queues.command, t.keyPrefix);
  });
  afterAll(async () => {
    devices.forEach((device) => device.close());
    await queues?.close();
    await redis?.quit();
    await t?.stop();
  });
  return {
    get t(): TestApp {
      return t!;
    },
    get queues(): QueueRegistry {
      return queues!;
    },
    devices,
  };
}

/**
 * Stores of their own (a database, a key prefix) and a scripted model, for a test that stops an
 * app and starts another on the same stores: `start` starts one with `env`; `close` drops them.
 */
export async function restartableStores(env: Record<string, string>): Promise<{
  llm: ScriptedLLM;
  start: () => Promise<RunningSwitchboard>;
  close: () => Promise<void>;
}> {
  const database = await createTestDatabase({ server: serverPostgresUrl() });
  const llm = await startScriptedLLM();
  const keyPrefix = `t-${randomUUID().slice(0, 8)}`;
  return {
    llm,
    start: () => {
      const config = testConfig({ keyPrefix, databaseUrl: database.url, env });
      return startSwitchboard(config, {
        logger: createLogger({ level: config.log.level }),
        endpoint: { baseURL: llm.baseURL, apiKey: 'test', provider: 'scripted', models: ['scripted-model'] },
      });
    },
    close: async () => {
      await llm.close();
      await database.drop();
    },
  };
}
