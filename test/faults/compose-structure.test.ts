import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, QUEUE_NAMES } from '../../config';
import { envSchema } from '../../config/env';
import { createTestDatabase, serverPostgresUrl, testRedisUrl, type TestDatabase } from '../support/database';
import { dockerfileInstructions } from '../support/dockerfile';
import { request } from '../support/http';
import { spawnSwitchboard, type SwitchboardProcess } from '../support/processes';

const ROOT = path.resolve(__dirname, '../..');
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

/** Variables read outside the config schema, documented in docs/operations.md and .env.example. */
const NON_CONFIG_VARS = ['REDIS_SERVER_BIN', 'TEST_REDIS_URL'];

interface Service {
  image?: string;
  build?: string | { context?: string; dockerfile?: string };
  command?: string | string[];
  environment?: Record<string, string | number | boolean> | string[];
  env_file?: string | string[];
  deploy?: { replicas?: number };
  healthcheck?: { test?: string | string[]; disable?: boolean };
  volumes?: string[];
  depends_on?: Record<string, { condition: string }> | string[];
}

/**
 * The deployment files, checked against the code: docker-compose.yml (parsed with PyYAML, which
 * resolves its anchors and merge keys; no YAML parser is a declared dependency), the Dockerfile,
 * deploy/nginx.conf and .env.example. Docker is not available here, so each Switchboard service is
 * also started as a real process with the environment its container would get.
 */
describe('deployment: docker-compose.yml, Dockerfile, nginx.conf, .env.example', () => {
  const compose = readYaml('docker-compose.yml') as { services: Record<string, Service> };
  const services = compose.services;
  const switchboardServices = Object.entries(services).filter(([, service]) => service.build !== undefined);
  const envOf = (service: Service) => normaliseEnv(service.environment);
  const rolesOf = (service: Service) => String(envOf(service).SWITCHBOARD_ROLES ?? 'api,worker,scheduler').split(',');
  const replicasOf = (service: Service) => service.deploy?.replicas ?? 1;

  test('postgres and redis run with healthchecks; redis is append-only and never evicts', () => {
    expect(Object.keys(services)).toEqual(expect.arrayContaining(['postgres', 'redis', 'api', 'nginx']));
    const redisCommand = commandLine(services.redis.command);
    expect(redisCommand).toContain('--appendonly yes');
    expect(redisCommand).toContain('--maxmemory-policy noeviction');
    for (const name of ['postgres', 'redis']) {
      expect(services[name].healthcheck?.test).toBeDefined();
      expect(services[name].healthcheck?.disable).not.toBe(true);
    }
  });

  test('two api replicas sit behind nginx, whose config upgrades websockets, keeps clients sticky and does not buffer', () => {
    const api = services.api;
    expect(rolesOf(api)).toEqual(['api']);
    expect(replicasOf(api)).toBe(2);
    // The api's healthcheck is the image's HEALTHCHECK (nginx waits for service_healthy on it).
    expect(api.healthcheck?.disable).not.toBe(true);
    expect(dockerfile().find((i) => i.keyword === 'HEALTHCHECK')?.args).toMatch(/\/healthz/);

    const nginx = services.nginx;
    expect(nginx.image).toMatch(/^nginx/);
    expect(nginx.depends_on).toMatchObject({ api: { condition: 'service_healthy' } });
    const mount = nginx.volumes?.find((volume) => volume.includes('nginx.conf'));
    expect(mount?.split(':')[0]).toBe('./deploy/nginx.conf');

    const conf = read('deploy/nginx.conf');
    expect(conf).toMatch(new RegExp(`server\\s+api:${envOf(api).PORT}\\b`));
    expect(conf).toMatch(/^\s*ip_hash;/m);
    expect(conf).toMatch(/proxy_http_version\s+1\.1;/);
    expect(conf).toMatch(/proxy_set_header\s+Upgrade\s+\$http_upgrade;/);
    expect(conf).toMatch(/proxy_set_header\s+Connection\s+\$connection_upgrade;/);
    expect(conf).toMatch(/map\s+\$http_upgrade\s+\$connection_upgrade\s*\{[^}]*default\s+upgrade;/);
    expect(conf).toMatch(/proxy_buffering\s+off;/);
  });

  test('worker services name only known queues, and together consume every one of them', () => {
    const workers = switchboardServices.filter(([, service]) => rolesOf(service).includes('worker'));
    expect(workers.length).toBeGreaterThan(0);
    const consumed = new Set<string>();
    for (const [name, service] of workers) {
      const queues = String(envOf(service).WORKER_QUEUES ?? '')
        .split(',')
        .map((q) => q.trim())
        .filter(Boolean);
      expect({ name, hasQueues: queues.length > 0 }).toEqual({ name, hasQueues: true });
      for (const queue of queues) {
        expect(QUEUE_NAMES).toContain(queue);
        consumed.add(queue);
      }
    }
    expect([...consumed].sort()).toEqual([...QUEUE_NAMES].sort());
  });

  test('Jaeger is optional: it runs only under the tracing profile, takes OTLP over HTTP, and .env.example shows how to point Switchboard at it', () => {
    const jaeger = services.jaeger as Service & { profiles?: string[]; expose?: string[]; ports?: string[] };
    expect(jaeger.image).toMatch(/^jaegertracing\/all-in-one:\d/);
    // A service with a profile is left out of a plain `docker compose up`.
    expect(jaeger.profiles).toEqual(['tracing']);
    expect([...(jaeger.expose ?? []), ...(jaeger.ports ?? [])].map(String)).toEqual(expect.arrayContaining(['4318']));
    for (const [name, service] of switchboardServices) {
      const dependsOn = Array.isArray(service.depends_on) ? service.depends_on : Object.keys(service.depends_on ?? {});
      expect({ name, dependsOn: dependsOn.includes('jaeger') }).toEqual({ name, dependsOn: false });
    }
    expect(read('.env.example')).toMatch(/^# OTEL_EXPORTER_OTLP_ENDPOINT=http:\/\/jaeger:4318$/m);
  });

  test('exactly one scheduler runs', () => {
    const schedulers = switchboardServices.filter(([, service]) => rolesOf(service).includes('scheduler'));
    expect(schedulers.map(([name, service]) => [name, replicasOf(service)])).toEqual([['scheduler', 1]]);
  });

  test('every variable set for a Switchboard service is a config variable, and .env.example lists exactly the schema and loads', () => {
    const known = new Set([...Object.keys(envSchema.shape), ...NON_CONFIG_VARS]);
    for (const [name, service] of switchboardServices) {
      const unknown = Object.keys(envOf(service)).filter((key) => !known.has(key));
      expect({ name, unknown }).toEqual({ name, unknown: [] });
      expect([service.env_file].flat()).toEqual(['.env']);
    }

    const example = parseEnvFile(read('.env.example'));
    expect(Object.keys(example).sort()).toEqual(Object.keys(envSchema.shape).sort());
    expect(() => loadConfig(example)).not.toThrow();
    // What a container gets before JWT_SECRET is set: the refusal docs/operations.md promises.
    expect(() => loadConfig({ ...example, ...envOf(services.api) })).toThrow('JWT_SECRET: required when NODE_ENV=production');
  });

  test('every service that builds uses the Dockerfile, whose COPY sources exist and whose CMD runs the switchboard command in one process', () => {
    expect(switchboardServices.map(([name]) => name).sort()).toEqual(['api', 'scheduler', 'worker-agents', 'worker-fanout', 'worker-llm']);
    for (const [, service] of switchboardServices) {
      const build = typeof service.build === 'string' ? { context: service.build } : service.build!;
      expect(path.resolve(ROOT, build.context ?? '.', build.dockerfile ?? 'Dockerfile')).toBe(path.join(ROOT, 'Dockerfile'));
    }

    const instructions = dockerfile();
    for (const copy of instructions.filter((i) => i.keyword === 'COPY')) {
      const sources = copy.args
        .split(/\s+/)
        .filter((arg) => !arg.startsWith('--'))
        .slice(0, -1);
      expect(sources.length).toBeGreaterThan(0);
      for (const source of sources) expect({ source, exists: existsSync(path.join(ROOT, source)) }).toEqual({ source, exists: true });
    }
    const cmd = JSON.parse(instructions.find((i) => i.keyword === 'CMD')!.args) as string[];
    // `node bin/switchboard.mjs start` (tsx's loader registered in-process): no launcher wrapper.
    expect(cmd).toEqual(['node', 'bin/switchboard.mjs', 'start']);
    expect(existsSync(path.join(ROOT, 'bin/switchboard.mjs'))).toBe(true);
    // The image installs with --omit=dev: tsx has to be a runtime dependency.
    expect(JSON.parse(read('package.json')).dependencies).toHaveProperty('tsx');
  });

  describe('each Switchboard service, started as a real process with its container environment', () => {
    let database: TestDatabase;
    let dataDir: string;
    const processes: SwitchboardProcess[] = [];

    beforeAll(async () => {
      database = await createTestDatabase({ server: serverPostgresUrl() });
      dataDir = mkdtempSync(path.join(os.tmpdir(), 'sb-compose-'));
    });

    afterAll(async () => {
      await Promise.all(processes.map((p) => p.stop('SIGKILL')));
      await database?.drop();
      rmSync(dataDir, { recursive: true, force: true });
    });

    test('prints its banner, passes its own healthcheck, and drains on SIGTERM with exit code 0', async () => {
      // Given: what `docker compose up` would set — image ENV, then .env (from .env.example, with the
      // JWT_SECRET, OAUTH_ENCRYPTION_KEY and LLM_DEMO=1 docs/operations.md says to add, no model
      // endpoint existing here), then the service's environment — with the servers and
      // ports that exist here. The compose file's one `redis` service is one redis-server: its stand-in
      // is the run's single server on every Redis topology of the run.
      const image = Object.fromEntries(
        dockerfile()
          .filter((i) => i.keyword === 'ENV')
          .flatMap((i) => i.args.split(/\s+/).map((pair) => pair.split('=', 2))),
      );
      const dotEnv = {
        ...parseEnvFile(read('.env.example')),
        JWT_SECRET: `compose-${randomUUID()}-${randomUUID()}`,
        OAUTH_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
        LLM_DEMO: '1',
      };
      const keyPrefix = `compose-${randomUUID().slice(0, 8)}`;
      const plans = await Promise.all(
        switchboardServices.map(async ([name, service]) => {
          const env = { ...image, ...dotEnv, ...envOf(service) } as Record<string, string>;
          const metricsPort = env.METRICS_PORT ? String(await freePort()) : undefined;
          const here = {
            DATABASE_URL: database.url,
            REDIS_URL: testRedisUrl(),
            REDIS_KEY_PREFIX: keyPrefix,
            DATA_DIR: dataDir,
            PORT: '0',
            ...(metricsPort && { METRICS_PORT: metricsPort }),
          };
          return { name, service, env: { ...env, ...here }, composePort: env.METRICS_PORT };
        }),
      );

      // When: all of them start together
      const started = await Promise.allSettled(plans.map((plan) => spawnSwitchboard(plan.env, 45_000)));
      started.forEach((result) => result.status === 'fulfilled' && processes.push(result.value));
      const failure = started.find((result) => result.status === 'rejected');
      if (failure) throw failure.reason;
      const nodes = started.map((result) => (result as PromiseFulfilledResult<SwitchboardProcess>).value);

      // Then: each printed its banner with its roles, and its own healthcheck passes
      for (const [index, plan] of plans.entries()) {
        const node = nodes[index];
        expect(node.output()).toMatch(new RegExp(`roles\\s+${rolesOf(plan.service).join(', ')}`));
        if (rolesOf(plan.service).includes('api')) {
          const port = new URL(node.url!).port;
          expect((await request('GET', `http://127.0.0.1:${port}/readyz`)).status).toBe(200);
          expect(runHealthcheck(imageHealthcheck(), { PORT: port })).toBe(0);
        } else if (plan.service.healthcheck?.disable) {
          expect(node.url).toBeUndefined();
        } else {
          const test = [plan.service.healthcheck!.test!].flat();
          expect(test.join(' ')).toContain(`:${plan.composePort}/healthz`);
          expect(runHealthcheck(test.map((part) => part.replace(`:${plan.composePort}/`, `:${plan.env.METRICS_PORT}/`)))).toBe(0);
        }
      }

      // Finally: SIGTERM drains each one and it exits 0
      expect(await Promise.all(nodes.map((node) => node.stop('SIGTERM')))).toEqual(nodes.map(() => 0));
    }, 60_000);

    test('a worker naming a queue that does not exist refuses to start, so the check above has teeth', async () => {
      const start = spawnSwitchboard({
        SWITCHBOARD_ROLES: 'worker',
        WORKER_QUEUES: 'generation,mailbox',
        DATABASE_URL: database.url,
        REDIS_URL: testRedisUrl(),
        REDIS_KEY_PREFIX: `compose-${randomUUID().slice(0, 8)}`,
      });
      start.then(
        (node) => processes.push(node),
        () => undefined,
      );

      await expect(start).rejects.toThrow(/WORKER_QUEUES: unknown queue\(s\) mailbox/);
    });
  });
});

/** docker-compose.yml through PyYAML (anchors and `<<` merge keys resolved), as JSON. */
function readYaml(file: string): unknown {
  const script = 'import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))';
  return JSON.parse(execFileSync('python3', ['-c', script, path.join(ROOT, file)], { encoding: 'utf8' }));
}

/** Dockerfile instructions, with `\` continuations joined and comments dropped. */
const dockerfile = () => dockerfileInstructions(ROOT);

/** The HEALTHCHECK's exec-form CMD, after its options. */
function imageHealthcheck(): string[] {
  const args = dockerfile().find((i) => i.keyword === 'HEALTHCHECK')!.args;
  return ['CMD', ...(JSON.parse(args.slice(args.indexOf('CMD') + 3).trim()) as string[])];
}

/** Runs a compose/Docker healthcheck (`["CMD", …]`) here; resolves its exit code. */
function runHealthcheck(test: string[], env: Record<string, string> = {}): number | null {
  expect(test[0]).toBe('CMD');
  const [command, ...args] = test.slice(1);
  return spawnSync(command === 'node' ? process.execPath : command, args, { env: { ...process.env, ...env }, timeout: 10_000 }).status;
}

function normaliseEnv(environment: Service['environment']): Record<string, string> {
  if (!environment) return {};
  const pairs = Array.isArray(environment) ? environment.map((entry) => entry.split('=', 2)) : Object.entries(environment);
  return Object.fromEntries(pairs.map(([key, value]) => [key, String(value ?? '')]));
}

/** `KEY=value` lines, as docker compose's env_file reads them (no quoting is used in ours). */
function parseEnvFile(text: string): Record<string, string> {
  const entries = text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => {
      const at = line.indexOf('=');
      if (at < 1) throw new Error(`not KEY=value: ${line}`);
      return [line.slice(0, at), line.slice(at + 1)] as const;
    });
  return Object.fromEntries(entries);
}

const commandLine = (command: Service['command']) => [command ?? []].flat().join(' ');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
