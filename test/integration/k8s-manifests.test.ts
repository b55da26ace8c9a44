import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { Queue } from 'bullmq';
import { loadConfig, QUEUE_NAMES, type QueueName } from '../../config';
import { envSchema } from '../../config/env';
import { QUEUE_CATALOG } from '../../src/producers/catalog';
import type { JobDeclaration } from '../../src/producers/define';
import { bullPrefix } from '../../src/producers/registry';
import { testBullConnection } from '../support/redis';
import { loadYamlDocuments } from '../support/yaml';

/**
 * deploy/k8s parsed and cross-checked (no cluster here): images, commands, env names, ports,
 * probes, grace periods against SHUTDOWN_TIMEOUT_MS, and the KEDA scalers against BullMQ's keys.
 */
const ROOT = path.resolve(__dirname, '../..');
const DIR = path.join(ROOT, 'deploy/k8s');
type Doc = Record<string, any>;

const load = (file: string): Doc[] => loadYamlDocuments(path.join(DIR, file));
const kustomization = load('kustomization.yaml')[0];
const docs: Doc[] = (kustomization.resources as string[]).flatMap(load);
const of = (kind: string) => docs.filter((doc) => doc.kind === kind);
const configMap = of('ConfigMap').find((doc) => doc.metadata.name === 'switchboard-config')!;
const secretExample = load('secret.example.yaml')[0];
const deployments = of('Deployment');
const podSpecs = [
  ...deployments.map((d) => [d.metadata.name, d.spec.template.spec] as const),
  ...of('Job').map((j) => [j.metadata.name, j.spec.template.spec] as const),
];
const containers = podSpecs.flatMap(([name, spec]) => (spec.containers as Doc[]).map((container) => ({ pod: name, spec, container })));
/** KEDA's Redis scaler reads REDIS_ADDRESS (host:port); Switchboard itself does not. */
const KEDA_ONLY = ['REDIS_ADDRESS'];
const queuesOf = (container: Doc): string[] => {
  const flag = (container.command as string[]).find((arg) => arg.startsWith('--queues='));
  return flag ? flag.slice('--queues='.length).split(',') : [];
};

describe('deploy/k8s', () => {
  test('the kustomization lists every manifest but the example Secret, and each parses', () => {
    const files = readdirSync(DIR).filter(
      (file) => file.endsWith('.yaml') && file !== 'kustomization.yaml' && file !== 'secret.example.yaml',
    );
    expect([...kustomization.resources].sort()).toEqual(files.sort());
    expect(deployments.map((d) => d.metadata.name).sort()).toEqual([
      'switchboard-api',
      'switchboard-scheduler',
      'switchboard-worker-agents',
      'switchboard-worker-fanout',
      'switchboard-worker-llm',
    ]);
  });

  test('every pod runs the one image of this version through the switchboard command, with the Secret and ConfigMap', () => {
    const { version } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    for (const { pod, container } of containers) {
      expect({ pod, image: container.image }).toEqual({ pod, image: `switchboard:${version}` });
      const [node, bin, command] = container.command as string[];
      expect([node, bin]).toEqual(['node', 'bin/switchboard.mjs']);
      expect(existsSync(path.join(ROOT, bin))).toBe(true);
      expect(['api', 'worker', 'scheduler', 'migrate']).toContain(command);
      expect(container.envFrom).toEqual([
        { configMapRef: { name: 'switchboard-config' } },
        { secretRef: { name: secretExample.metadata.name } },
      ]);
    }
  });

  test('each queue is consumed by exactly one worker pool', () => {
    const pools = containers.filter(({ container }) => container.command[2] === 'worker');
    const consumed = pools.flatMap(({ container }) => queuesOf(container));
    expect([...consumed].sort()).toEqual([...QUEUE_NAMES].sort());
  });

  test('every env name set anywhere is a config variable, and the ConfigMap plus the Secret load as production config', () => {
    const known = new Set(Object.keys(envSchema.shape));
    const named = [
      ...Object.keys(configMap.data),
      ...containers.flatMap(({ container }) => (container.env ?? []).map((e: Doc) => e.name as string)),
    ];
    expect(named.filter((name) => !known.has(name))).toEqual([]);
    expect(Object.keys(secretExample.stringData).filter((name) => !known.has(name) && !KEDA_ONLY.includes(name))).toEqual([]);
    for (const required of ['JWT_SECRET', 'OAUTH_ENCRYPTION_KEY', 'DATABASE_URL', 'REDIS_URL'])
      expect(secretExample.stringData).toHaveProperty(required);
    const secrets = {
      JWT_SECRET: 'x'.repeat(48),
      OAUTH_ENCRYPTION_KEY: Buffer.alloc(32, 7).toString('base64'),
      DATABASE_URL: 'postgres://db/sb',
      REDIS_URL: 'redis://redis:6379',
      METRICS_TOKEN: 'm'.repeat(32),
    };
    const config = loadConfig({ ...configMap.data, ...secrets });
    expect(config.env).toBe('production');
    expect(config.http.host).toBe('0.0.0.0');
  });

  test('ports and probes: readiness on /readyz and liveness on /healthz of a port the container declares', () => {
    for (const { pod, container } of containers.filter(({ container }) => container.command[2] !== 'migrate')) {
      const ports = new Map((container.ports as Doc[]).map((port) => [port.name, port.containerPort]));
      expect({ pod, readiness: container.readinessProbe.httpGet.path, liveness: container.livenessProbe.httpGet.path }).toEqual({
        pod,
        readiness: '/readyz',
        liveness: '/healthz',
      });
      for (const probe of [container.readinessProbe, container.livenessProbe]) expect(ports.has(probe.httpGet.port)).toBe(true);
      const env = Object.fromEntries((container.env ?? []).map((e: Doc) => [e.name, e.value]));
      // The api listens on PORT; other roles serve metrics and probes on METRICS_PORT.
      const listens = container.command[2] === 'api' ? Number(configMap.data.PORT) : Number(env.METRICS_PORT);
      expect({ pod, port: [...ports.values()] }).toEqual({ pod, port: [listens] });
    }
    const service = of('Service').find((doc) => doc.metadata.name === 'switchboard-api')!;
    const api = deployments.find((d) => d.metadata.name === 'switchboard-api')!;
    expect(service.spec.selector).toEqual(api.spec.selector.matchLabels);
    expect(api.spec.template.metadata.labels).toMatchObject(api.spec.selector.matchLabels);
    expect(api.spec.template.spec.containers[0].ports.map((p: Doc) => p.name)).toContain(service.spec.ports[0].targetPort);
    for (const deployment of deployments) {
      const annotations = deployment.spec.template.metadata.annotations ?? {};
      if (annotations['prometheus.io/port'])
        expect(deployment.spec.template.spec.containers[0].ports.map((p: Doc) => String(p.containerPort))).toContain(
          annotations['prometheus.io/port'],
        );
    }
  });

  test('terminationGracePeriodSeconds covers SHUTDOWN_TIMEOUT_MS plus the preStop pause plus a margin', () => {
    const shutdownSeconds = Number(configMap.data.SHUTDOWN_TIMEOUT_MS) / 1000;
    for (const deployment of deployments) {
      const spec = deployment.spec.template.spec;
      const preStop = spec.containers[0].lifecycle?.preStop?.sleep?.seconds ?? 0;
      const grace = spec.terminationGracePeriodSeconds;
      expect({
        name: deployment.metadata.name,
        enough: grace >= shutdownSeconds + preStop + 5,
        bounded: grace <= shutdownSeconds + preStop + 30,
      }).toEqual({ name: deployment.metadata.name, enough: true, bounded: true });
    }
  });

  test('pods run as the image’s non-root node user with a read-only root and a writable /tmp', () => {
    for (const [pod, spec] of podSpecs) {
      expect({ pod, ...spec.securityContext }).toMatchObject({ pod, runAsNonRoot: true, runAsUser: 1000 });
      const container = spec.containers[0];
      expect(container.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true });
      expect(container.volumeMounts).toEqual([{ name: 'tmp', mountPath: '/tmp' }]);
    }
  });

  test("a daily CronJob backs the database up with the backup script, from the Secret's DATABASE_URL onto a volume of its own", () => {
    const [cron] = of('CronJob');
    expect(cron.metadata.name).toBe('switchboard-backup');
    // Once a day, never two at once.
    expect(cron.spec.schedule).toMatch(/^\d+ \d+ \* \* \*$/);
    expect(cron.spec.concurrencyPolicy).toBe('Forbid');
    const pod = cron.spec.jobTemplate.spec.template.spec;
    const [container] = pod.containers;
    expect(container.image).toMatch(/^postgres:\d+$/);
    expect(container.command).toEqual(['bash', '/scripts/backup.sh']);
    expect(container.env).toEqual(
      expect.arrayContaining([
        { name: 'DATABASE_URL', valueFrom: { secretKeyRef: { name: secretExample.metadata.name, key: 'DATABASE_URL' } } },
        { name: 'BACKUP_DIR', value: '/backups' },
      ]),
    );
    expect(container.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true });
    expect(container.resources.limits.memory).toBeDefined();
    const volume = (name: string) => pod.volumes.find((v: Doc) => v.name === name);
    // The script comes from the kustomization's generator, out of the file compose mounts too.
    const generated = (kustomization.configMapGenerator as Doc[]).find((g) => g.name === volume('scripts').configMap.name)!;
    expect(generated.files).toEqual(['backup.sh']);
    expect(existsSync(path.join(DIR, 'backup.sh'))).toBe(true);
    const claim = of('PersistentVolumeClaim').find((c) => c.metadata.name === volume('backups').persistentVolumeClaim.claimName);
    expect(claim?.spec.resources.requests.storage).toBeDefined();
    expect(container.volumeMounts).toEqual(
      expect.arrayContaining([
        { name: 'scripts', mountPath: '/scripts', readOnly: true },
        { name: 'backups', mountPath: '/backups' },
      ]),
    );
  });

  test("an Ingress serves PUBLIC_URL's host over TLS to the api Service, with the edge's limits and unbuffered long-lived streams", () => {
    const [ingress] = of('Ingress');
    const host = new URL(configMap.data.PUBLIC_URL).host;
    expect(new URL(configMap.data.PUBLIC_URL).protocol).toBe('https:');
    expect(ingress.spec.tls).toEqual([{ hosts: [host], secretName: 'switchboard-tls' }]);
    expect(ingress.spec.rules.map((rule: Doc) => rule.host)).toEqual([host]);
    const service = of('Service').find((doc) => doc.metadata.name === 'switchboard-api')!;
    for (const path of ingress.spec.rules[0].http.paths) {
      expect(path.backend.service.name).toBe(service.metadata.name);
      expect(service.spec.ports.map((port: Doc) => port.name)).toContain(path.backend.service.port.name);
    }
    const annotations = ingress.metadata.annotations as Record<string, string>;
    expect(annotations).toMatchObject({
      'nginx.ingress.kubernetes.io/ssl-redirect': 'true',
      'nginx.ingress.kubernetes.io/force-ssl-redirect': 'true',
      'nginx.ingress.kubernetes.io/proxy-buffering': 'off',
      'nginx.ingress.kubernetes.io/affinity': 'cookie',
    });
    expect(Number(annotations['nginx.ingress.kubernetes.io/limit-connections'])).toBeGreaterThan(0);
    // SSE heartbeats every 15 s, Socket.IO pings every 25 s: the proxy waits far longer than either.
    expect(Number(annotations['nginx.ingress.kubernetes.io/proxy-read-timeout'])).toBeGreaterThanOrEqual(600);
    // One proxy in front of the pods: the api trusts that one hop.
    expect(loadConfig({ TRUST_PROXY: configMap.data.TRUST_PROXY }).trustProxy).toBe(1);
  });

  test('NetworkPolicies let only Switchboard pods that use them reach PostgreSQL and Redis', () => {
    const policies = of('NetworkPolicy');
    const byName = (name: string) => policies.find((p) => p.metadata.name === name)!;
    const components = (rule: Doc): string[] =>
      (rule.from as Doc[])
        .flatMap((peer) => peer.podSelector?.matchExpressions ?? [])
        .filter((e: Doc) => e.key === 'app.kubernetes.io/component')
        .flatMap((e: Doc) => e.values);
    const podComponents = [
      ...podSpecs.map(([name]) => docs.find((d) => d.metadata.name === name)!.spec.template.metadata.labels['app.kubernetes.io/component']),
      ...of('CronJob').map((c) => c.spec.jobTemplate.spec.template.metadata.labels['app.kubernetes.io/component']),
    ];

    const postgres = byName('postgres-from-switchboard-only');
    expect(postgres.spec.podSelector).toEqual({ matchLabels: { 'app.kubernetes.io/name': 'postgres' } });
    expect(postgres.spec.policyTypes).toEqual(['Ingress']);
    expect(postgres.spec.ingress).toHaveLength(1);
    // Every pod of this kustomization opens the database (DATABASE_URL): each is let in, nothing else.
    expect([...components(postgres.spec.ingress[0])].sort()).toEqual([...podComponents].sort());
    expect(postgres.spec.ingress[0].ports).toEqual([{ protocol: 'TCP', port: 5432 }]);

    const redis = byName('redis-from-switchboard-only');
    expect(redis.spec.podSelector.matchExpressions).toEqual([
      { key: 'app.kubernetes.io/name', operator: 'In', values: ['redis', 'redis-cluster'] },
    ]);
    const [clients, nodes] = redis.spec.ingress as Doc[];
    // The api, the worker pools and the scheduler use Redis; the migrate Job and the backup do not.
    const redisUsers = deployments.map((d) => d.spec.template.metadata.labels['app.kubernetes.io/component']);
    expect([...components(clients)].sort()).toEqual([...redisUsers].sort());
    expect(clients.from).toContainEqual({ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'keda' } } });
    expect(clients.ports).toEqual([{ protocol: 'TCP', port: 6379 }]);
    expect(nodes.ports.map((p: Doc) => p.port)).toEqual([6379, 16379]);
    // No rule lets in every pod (an empty selector) or every namespace.
    for (const rule of [...postgres.spec.ingress, ...redis.spec.ingress])
      for (const peer of rule.from as Doc[]) {
        expect(peer.podSelector ?? peer.namespaceSelector).toBeDefined();
        expect(Object.keys(peer.podSelector ?? peer.namespaceSelector).length).toBeGreaterThan(0);
      }
  });

  test('KEDA scales each worker pool on the waiting jobs of every queue it consumes, wherever BullMQ keeps them', () => {
    const prefix = bullPrefix(configMap.data.REDIS_KEY_PREFIX);
    const auth = of('TriggerAuthentication');
    expect(auth.map((a) => a.metadata.name).sort()).toEqual(['switchboard-metrics', 'switchboard-redis']);
    for (const ref of auth.flatMap((a) => a.spec.secretTargetRef as Doc[])) {
      expect(ref.name).toBe(secretExample.metadata.name);
      expect(secretExample.stringData).toHaveProperty(ref.key);
    }
    expect(auth.find((a) => a.metadata.name === 'switchboard-metrics')!.spec.secretTargetRef).toEqual([
      { parameter: 'token', name: secretExample.metadata.name, key: 'METRICS_TOKEN' },
    ]);
    const api = of('Service').find((s) => s.metadata.name === 'switchboard-api')!;
    const scaled = of('ScaledObject');
    const pools = deployments.filter((d) => d.spec.template.spec.containers[0].command[2] === 'worker');
    expect(scaled.map((s) => s.spec.scaleTargetRef.name).sort()).toEqual(pools.map((d) => d.metadata.name).sort());
    for (const object of scaled) {
      const target = pools.find((d) => d.metadata.name === object.spec.scaleTargetRef.name)!;
      const read = (object.spec.triggers as Doc[]).map((trigger) => {
        if (trigger.type === 'metrics-api') {
          // Through the api Service's /metrics/queues, with the metrics bearer token
          expect(trigger).toMatchObject({ authenticationRef: { name: 'switchboard-metrics' }, metadata: { authMode: 'bearer' } });
          expect(trigger.metadata.url).toBe(`http://${api.metadata.name}.${kustomization.namespace}.svc/metrics/queues`);
          expect(Number(trigger.metadata.targetValue)).toBeGreaterThan(0);
          const [, queue, state] = /^queues\.([a-z-]+)\.(\w+)$/.exec(trigger.metadata.valueLocation)!;
          expect(state).toBe('waiting');
          return { queue, how: 'waiting count' };
        }
        expect(trigger).toMatchObject({ type: 'redis', authenticationRef: { name: 'switchboard-redis' } });
        expect(Number(trigger.metadata.listLength)).toBeGreaterThan(0);
        const [, queue] = new RegExp(`^${prefix.replace(/[{}]/g, '\\$&')}:([a-z-]+):wait$`).exec(trigger.metadata.listName)!;
        return { queue, how: 'wait list' };
      });
      // A fairly shared queue's waiting jobs are in BullMQ's prioritized set, which the list scaler cannot read.
      const fair = (queue: QueueName) =>
        Object.values(QUEUE_CATALOG[queue].jobs as Record<string, JobDeclaration>).some((job) => job.fairBy);
      expect(read.sort((a, b) => a.queue.localeCompare(b.queue))).toEqual(
        queuesOf(target.spec.template.spec.containers[0])
          .sort()
          .map((queue) => ({ queue, how: fair(queue as QueueName) ? 'waiting count' : 'wait list' })),
      );
      expect(object.spec.minReplicaCount).toBeGreaterThanOrEqual(1);
    }
  });

  test('the wait list the scalers read is where BullMQ keeps waiting jobs: a Redis list that grows with each enqueue', async () => {
    const keyPrefix = `k8s-${randomUUID().slice(0, 8)}`;
    const redis = testBullConnection();
    const queue = new Queue('generation', { connection: redis, prefix: bullPrefix(keyPrefix) });
    try {
      await queue.add('probe', { n: 1 });
      await queue.add('probe', { n: 2 });
      const key = `${bullPrefix(keyPrefix)}:generation:wait`;
      expect(await redis.type(key)).toBe('list');
      expect(await redis.llen(key)).toBe(2);
    } finally {
      await queue.obliterate({ force: true });
      await queue.close();
      await redis.quit();
    }
  });
});
