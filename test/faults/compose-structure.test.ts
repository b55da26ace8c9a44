import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
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
  deploy?: { replicas?: number; resources?: { limits?: { cpus?: string; memory?: string } } };
  ports?: string[];
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

  test('nginx terminates TLS with the certificate the tls-cert service makes or finds, and plain HTTP only redirects to it', () => {
    const nginx = services.nginx;
    expect(nginx.ports).toEqual(['${EDGE_HTTP_PORT:-8080}:80', '${EDGE_HTTPS_PORT:-8443}:443']);
    // The config is a template of the nginx image: the HTTPS port goes into the redirect at start.
    expect(nginx.volumes).toContain('./deploy/nginx.conf:/etc/nginx/templates/default.conf.template:ro');
    expect(envOf(nginx).EDGE_HTTPS_PORT).toBe('${EDGE_HTTPS_PORT:-8443}');
    const certs = nginx.volumes!.find((volume) => volume.endsWith(':/etc/nginx/certs:ro'))!;
    const certSource = certs.split(':/etc/nginx/certs')[0];
    expect(certSource).toBe('${TLS_CERT_DIR:-./deploy/certs}');
    expect(nginx.depends_on).toMatchObject({ 'tls-cert': { condition: 'service_completed_successfully' } });
    const tls = services['tls-cert'];
    expect(tls.volumes).toEqual(['./deploy/tls-cert.sh:/usr/local/bin/tls-cert.sh:ro', `${certSource}:/certs`]);

    const conf = read('deploy/nginx.conf');
    const servers = conf.split(/^server \{$/m).slice(1);
    expect(servers).toHaveLength(2);
    const [plain, secure] = servers;
    expect(plain).toMatch(/listen 80;/);
    expect(plain).toMatch(/return 308 https:\/\/\$host:\$\{EDGE_HTTPS_PORT\}\$request_uri;/);
    expect(plain).not.toMatch(/proxy_pass/);
    expect(secure).toMatch(/listen 443 ssl;/);
    expect(secure).toMatch(/ssl_certificate\s+\/etc\/nginx\/certs\/tls\.crt;/);
    expect(secure).toMatch(/ssl_certificate_key\s+\/etc\/nginx\/certs\/tls\.key;/);
    expect(secure).toMatch(/ssl_protocols TLSv1\.2 TLSv1\.3;/);
    expect(secure).toMatch(/add_header Strict-Transport-Security "max-age=31536000; includeSubDomains" always;/);
    expect(secure).toMatch(/proxy_pass http:\/\/switchboard_api;/);
  });

  test('the edge caps connections per client address and sets request deadlines that leave live streams alone', () => {
    const conf = read('deploy/nginx.conf');
    expect(conf).toMatch(/limit_conn_zone \$binary_remote_addr zone=per_ip:\d+m;/);
    const [, secure] = conf.split(/^server \{$/m).slice(1);
    expect(secure).toMatch(/limit_conn per_ip \d+;/);
    expect(secure).toMatch(/limit_conn_status 429;/);
    const seconds = (name: string) => Number(new RegExp(`${name} (\\d+)s;`).exec(secure)?.[1]);
    expect(seconds('client_header_timeout')).toBeLessThanOrEqual(15);
    expect(seconds('client_body_timeout')).toBeLessThanOrEqual(15);
    // A live SSE stream writes a heartbeat every 15 s: the send deadline must be longer.
    expect(seconds('send_timeout')).toBeGreaterThan(15);
  });

  test('the tls-cert script makes a self-signed certificate for TLS_HOSTNAME once, and keeps one that is there', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sb-tls-'));
    try {
      const run = () =>
        execFileSync('bash', [path.join(ROOT, 'deploy/tls-cert.sh')], {
          env: { PATH: process.env.PATH, TLS_CERT_DIR_IN_CONTAINER: dir, TLS_HOSTNAME: 'sb.example.test' },
          encoding: 'utf8',
        });
      expect(run()).toContain('made a self-signed certificate for sb.example.test');
      const cert = execFileSync('openssl', ['x509', '-in', path.join(dir, 'tls.crt'), '-noout', '-subject', '-ext', 'subjectAltName'], {
        encoding: 'utf8',
      });
      expect(cert).toContain('CN = sb.example.test');
      expect(cert).toContain('DNS:localhost');
      const made = readFileSync(path.join(dir, 'tls.crt'), 'utf8');
      expect(run()).toContain('using the certificate in');
      expect(readFileSync(path.join(dir, 'tls.crt'), 'utf8')).toBe(made);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the api trusts exactly the one proxy in front of it, and every long-running service has CPU and memory limits', () => {
    expect(envOf(services.api).TRUST_PROXY).toBe('1');
    expect(loadConfig({ TRUST_PROXY: '1' }).trustProxy).toBe(1);
    for (const [name, service] of Object.entries(services)) {
      const limits = service.deploy?.resources?.limits;
      expect({ name, cpus: Number(limits?.cpus) > 0, memory: /^\d+[MG]$/.test(limits?.memory ?? '') }).toEqual({
        name,
        cpus: true,
        memory: true,
      });
    }
    // Redis refuses writes (noeviction) before its container is OOM-killed.
    const maxmemory = /--maxmemory (\d+)mb/.exec(commandLine(services.redis.command))?.[1];
    const limit = services.redis.deploy!.resources!.limits!.memory!;
    expect(Number(maxmemory)).toBeLessThan(Number.parseInt(limit, 10) * (limit.endsWith('G') ? 1024 : 1));
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

  test("a backup service dumps the servers' database daily with the backup script the k8s CronJob runs, into ./backups", () => {
    const backup = services.backup;
    // The postgres image of the server's own version: pg_dump refuses a newer server.
    expect(backup.image).toBe(services.postgres.image);
    expect(commandLine((backup as Service & { entrypoint?: string[] }).entrypoint)).toBe('bash /usr/local/bin/switchboard-backup.sh');
    expect(backup.volumes).toEqual(['./deploy/k8s/backup.sh:/usr/local/bin/switchboard-backup.sh:ro', './backups:/backups']);
    const env = envOf(backup);
    expect(env.DATABASE_URL).toBe(envOf(services.api).DATABASE_URL);
    expect(env).toMatchObject({ BACKUP_DIR: '/backups', BACKUP_INTERVAL_SECONDS: '86400' });
    expect(backup.depends_on).toMatchObject({ postgres: { condition: 'service_healthy' } });
    expect(existsSync(path.join(ROOT, 'deploy/k8s/backup.sh'))).toBe(true);
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
    // `node bin/switchboard.mjs start` (the bundle, or tsx's loader, in-process): no launcher wrapper.
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

/**
 * A port nothing listens on right now, on every address (the services listen on 0.0.0.0), picked
 * below the OS's ephemeral range: a port the OS handed out and took back can be given at once to
 * another process's outgoing connection, before the service binds it.
 */
async function freePort(): Promise<number> {
  const listenable = (port: number) =>
    new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen(port, () => server.close(() => resolve(true)));
    });
  for (let attempt = 0; attempt < 100; attempt += 1) {
    const port = 10_000 + Math.floor(Math.random() * 10_000);
    if (await listenable(port)) return port;
  }
  throw new Error('no free port below the ephemeral range');
}
