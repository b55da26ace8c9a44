import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, QUEUE_NAMES } from '../../config';
import { envSchema } from '../../config/env';
import { samplerFrom } from '../../src/observability/tracing-sdk';
import { tracingRequested } from '../../src/observability/tracing';
import { loadYamlDocuments } from '../support/yaml';

/**
 * deploy/k8s-cluster, the cluster-mode overlay of deploy/k8s, rendered here as kustomize renders it
 * (the base's documents, the ConfigMap merge, the replica counts, the JSON patches) and
 * cross-checked: no cluster and no kustomize run here.
 */
const ROOT = path.resolve(__dirname, '../..');
const DIR = path.join(ROOT, 'deploy/k8s-cluster');
const BASE = path.join(ROOT, 'deploy/k8s');
type Doc = Record<string, any>;

/** The Redis scale-out variables, read by the Redis connection module (names as the contract gives them). */
const SCALE_OUT = ['REDIS_CLUSTER_NODES', 'REDIS_URL_QUEUES', 'REDIS_URL_REALTIME', 'REDIS_URL_CACHE'];
/** Read by KEDA (REDIS_ADDRESSES) and by postgres.yaml (POSTGRES_PASSWORD), not by Switchboard. */
const NOT_SWITCHBOARD = ['REDIS_ADDRESSES', 'POSTGRES_PASSWORD'];
const switchboardVariable = (name: string) => name in envSchema.shape || SCALE_OUT.includes(name) || name.startsWith('OTEL_');

const kustomization = loadYamlDocuments(path.join(DIR, 'kustomization.yaml'))[0] as Doc;
const secret = loadYamlDocuments(path.join(DIR, 'secret.example.yaml'))[0] as Doc;
const rendered = render();
const of = (kind: string) => rendered.filter((doc) => doc.kind === kind);
const named = (kind: string, name: string) => of(kind).find((doc) => doc.metadata.name === name)!;
const configMap = named('ConfigMap', 'switchboard-config').data as Record<string, string>;
const deployments = of('Deployment');
const replicas = (name: string) => named('Deployment', name).spec.replicas as number;

/** The overlay as kustomize applies it: base documents, merged ConfigMap literals, replicas, JSON 6902 `replace` patches. */
function render(): Doc[] {
  const baseKustomization = loadYamlDocuments(path.join(BASE, 'kustomization.yaml'))[0] as Doc;
  const docs: Doc[] = (kustomization.resources as string[]).flatMap((resource) =>
    resource === '../k8s'
      ? (baseKustomization.resources as string[]).flatMap((file) => loadYamlDocuments(path.join(BASE, file)))
      : loadYamlDocuments(path.join(DIR, resource)),
  );
  for (const generator of kustomization.configMapGenerator as Doc[]) {
    expect(generator.behavior).toBe('merge');
    const target = docs.find((doc) => doc.kind === 'ConfigMap' && doc.metadata.name === generator.name)!;
    for (const literal of generator.literals as string[]) {
      const at = literal.indexOf('=');
      target.data[literal.slice(0, at)] = literal.slice(at + 1);
    }
  }
  for (const { name, count } of kustomization.replicas as Doc[]) {
    const target = docs.find((doc) => (doc.kind === 'Deployment' || doc.kind === 'StatefulSet') && doc.metadata.name === name);
    expect({ name, found: target !== undefined }).toEqual({ name, found: true });
    target!.spec.replicas = count;
  }
  for (const { target, patch } of kustomization.patches as Doc[]) {
    const doc = docs.find((d) => d.kind === target.kind && d.metadata.name === target.name)!;
    expect({ target: target.name, found: doc !== undefined }).toEqual({ target: target.name, found: true });
    for (const op of loadYamlText(patch) as Doc[]) {
      expect(op.op).toBe('replace');
      const keys = (op.path as string).split('/').slice(1);
      const parent = keys.slice(0, -1).reduce((node, key) => node[key], doc);
      expect(parent[keys.at(-1)!]).toBeDefined();
      parent[keys.at(-1)!] = op.value;
    }
  }
  return docs;
}

/** A YAML string (a patch written inline in the kustomization), parsed as the files are. */
function loadYamlText(text: string): unknown {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'k8s-patch-'));
  try {
    writeFileSync(path.join(dir, 'patch.yaml'), text);
    return loadYamlDocuments(path.join(dir, 'patch.yaml'))[0];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('deploy/k8s-cluster (cluster mode)', () => {
  test('the overlay builds on deploy/k8s and lists every manifest of its own but the example Secret', () => {
    const own = readdirSync(DIR).filter((file) => file.endsWith('.yaml') && !['kustomization.yaml', 'secret.example.yaml'].includes(file));
    expect([...kustomization.resources].sort()).toEqual(['../k8s', ...own].sort());
    expect(kustomization.namespace).toBe('switchboard');
  });

  test('several api replicas, worker pools that still consume every queue once, exactly one scheduler', () => {
    expect(replicas('switchboard-api')).toBeGreaterThanOrEqual(2);
    expect(replicas('switchboard-scheduler')).toBe(1);
    const pools = deployments.filter((d) => d.spec.template.spec.containers[0].command[2] === 'worker');
    for (const pool of pools) expect(pool.spec.replicas).toBeGreaterThanOrEqual(1);
    const consumed = pools.flatMap((pool) =>
      (pool.spec.template.spec.containers[0].command as string[])
        .find((arg) => arg.startsWith('--queues='))!
        .slice('--queues='.length)
        .split(','),
    );
    expect(consumed.sort()).toEqual([...QUEUE_NAMES].sort());
    // KEDA never scales a pool below its starting size
    for (const scaled of of('ScaledObject')) {
      const target = scaled.spec.scaleTargetRef.name as string;
      expect({ target, min: scaled.spec.minReplicaCount }).toEqual({ target, min: replicas(target) });
      expect(scaled.spec.maxReplicaCount).toBeGreaterThan(scaled.spec.minReplicaCount);
    }
    const hpa = named('HorizontalPodAutoscaler', 'switchboard-api');
    expect(hpa.spec.scaleTargetRef).toMatchObject({ kind: 'Deployment', name: 'switchboard-api' });
    expect(hpa.spec.minReplicas).toBe(replicas('switchboard-api'));
    expect(hpa.spec.maxReplicas).toBeGreaterThan(hpa.spec.minReplicas);
    for (const budget of of('PodDisruptionBudget')) {
      const matches = deployments.filter((d) =>
        Object.entries(budget.spec.selector.matchLabels).every(([key, value]) => d.spec.template.metadata.labels[key] === value),
      );
      expect({ budget: budget.metadata.name, pods: matches.length }).toEqual({ budget: budget.metadata.name, pods: 1 });
    }
  });

  test('every variable it sets is Switchboard’s or OpenTelemetry’s, and the ConfigMap plus the Secret load as production config with tracing on', () => {
    expect(Object.keys(configMap).filter((name) => !switchboardVariable(name))).toEqual([]);
    expect(Object.keys(secret.stringData).filter((name) => !switchboardVariable(name) && !NOT_SWITCHBOARD.includes(name))).toEqual([]);
    const env = {
      ...configMap,
      JWT_SECRET: 'x'.repeat(48),
      OAUTH_ENCRYPTION_KEY: Buffer.alloc(32, 7).toString('base64'),
      DATABASE_URL: 'postgres://switchboard:pw@postgres:5432/switchboard',
    };
    expect(secret.stringData.REDIS_URL).toBeUndefined();
    const config = loadConfig(env);
    expect(config.env).toBe('production');
    expect(config.redis.cluster?.length).toBe(3);
    expect(tracingRequested(env)).toBe(true);
    const endpoint = new URL(configMap.OTEL_EXPORTER_OTLP_ENDPOINT);
    // The exporter adds /v1/traces to the general endpoint: the root of an OTLP/HTTP receiver.
    expect({ port: endpoint.port, path: endpoint.pathname }).toEqual({ port: '4318', path: '/' });
    expect(samplerFrom(env).toString()).toMatch(/^ParentBased\{root=TraceIdRatioBased\{0\.1\}/);
  });

  test('REDIS_CLUSTER_NODES names nodes of the Redis Cluster it runs, and KEDA reads the base’s wait lists from the same nodes', () => {
    const service = named('Service', 'redis-cluster');
    const redis = named('StatefulSet', 'redis-cluster');
    expect(service.spec.clusterIP).toBe('None');
    expect(redis.spec.serviceName).toBe(service.metadata.name);
    // Three primaries with a replica each: the smallest cluster that survives losing a node.
    expect(redis.spec.replicas).toBe(6);
    const args = (redis.spec.template.spec.containers[0].args as string[]).join(' ');
    expect(args).toContain('--cluster-enabled yes');
    expect(args).toContain('--appendonly yes');
    expect(args).toContain('--maxmemory-policy noeviction');
    const [shell, flags, script] = named('Job', 'redis-cluster-create').spec.template.spec.containers[0].command as string[];
    expect([shell, flags]).toEqual(['sh', '-ec']);
    // The script at least parses as POSIX shell (it runs in the redis image, not here).
    expect(spawnSync('sh', ['-n', '-c', script]).status).toBe(0);
    const create = script;
    expect(create).toContain('--cluster-replicas 1');
    expect(create).toContain(`for i in ${Array.from({ length: redis.spec.replicas }, (_, i) => i).join(' ')}`);

    const seeds = configMap.REDIS_CLUSTER_NODES.split(',');
    expect(seeds.length).toBeGreaterThanOrEqual(3);
    for (const seed of seeds) {
      const match = /^redis-cluster-(\d+)\.redis-cluster:6379$/.exec(seed);
      expect({ seed, ok: match !== null && Number(match[1]) < redis.spec.replicas }).toEqual({ seed, ok: true });
    }

    const auth = named('TriggerAuthentication', 'switchboard-redis');
    expect(auth.spec.secretTargetRef).toEqual([{ parameter: 'addresses', name: secret.metadata.name, key: 'REDIS_ADDRESSES' }]);
    expect(secret.stringData.REDIS_ADDRESSES).toBe(configMap.REDIS_CLUSTER_NODES);
    const baseTriggers = loadYamlDocuments(path.join(BASE, 'autoscaling.yaml'))
      .filter((doc: Doc) => doc.kind === 'ScaledObject')
      .flatMap((doc: Doc) => doc.spec.triggers as Doc[]);
    const triggers = of('ScaledObject').flatMap((doc) => doc.spec.triggers as Doc[]);
    // Every wait list is read from the cluster; the triggers on the api's /metrics/queues stay as they are.
    expect(triggers.map((t) => t.type)).toEqual(baseTriggers.map((t) => (t.type === 'redis' ? 'redis-cluster' : t.type)));
    expect(triggers.map((t) => t.metadata)).toEqual(baseTriggers.map((t) => t.metadata));
    expect(baseTriggers.filter((t) => t.type !== 'redis').map((t) => t.type)).toEqual(['metrics-api', 'metrics-api']);
  });

  test("the base's NetworkPolicies select the PostgreSQL and Redis Cluster pods this overlay runs, and let the cluster's nodes talk", () => {
    const selects = (policy: Doc, labels: Record<string, string>) => {
      const { matchLabels = {}, matchExpressions = [] } = policy.spec.podSelector as Doc;
      return (
        Object.entries(matchLabels).every(([key, value]) => labels[key] === value) &&
        (matchExpressions as Doc[]).every((e) => e.operator === 'In' && e.values.includes(labels[e.key]))
      );
    };
    const policy = (name: string) => named('NetworkPolicy', name);
    const postgres = named('StatefulSet', 'postgres').spec.template.metadata.labels;
    const redis = named('StatefulSet', 'redis-cluster').spec.template.metadata.labels;
    expect(selects(policy('postgres-from-switchboard-only'), postgres)).toBe(true);
    expect(selects(policy('redis-from-switchboard-only'), redis)).toBe(true);
    // The cluster's nodes and its creation Job reach the nodes on both ports.
    const nodesRule = (policy('redis-from-switchboard-only').spec.ingress as Doc[])[1];
    const allowed = nodesRule.from[0].podSelector.matchExpressions[0].values as string[];
    expect(allowed).toContain(redis['app.kubernetes.io/name']);
    expect(allowed).toContain(named('Job', 'redis-cluster-create').spec.template.metadata.labels['app.kubernetes.io/name']);
  });

  test('PostgreSQL takes its password from the Secret the example shows, and DATABASE_URL points at its Service', () => {
    const postgres = named('StatefulSet', 'postgres');
    const refs = (postgres.spec.template.spec.containers[0].env as Doc[]).flatMap((e) =>
      e.valueFrom?.secretKeyRef ? [e.valueFrom.secretKeyRef] : [],
    );
    for (const ref of refs) {
      expect(ref.name).toBe(secret.metadata.name);
      expect(secret.stringData).toHaveProperty(ref.key);
    }
    const url = new URL(secret.stringData.DATABASE_URL);
    expect(url.hostname).toBe(named('Service', 'postgres').metadata.name);
    expect(Number(url.port)).toBe(named('Service', 'postgres').spec.ports[0].port);
  });
});
