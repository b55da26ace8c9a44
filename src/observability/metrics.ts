import { timingSafeEqual } from 'node:crypto';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { QueueName } from '../../config';
import { ResourceMetrics } from './resource-metrics';

/** Seconds buckets for things that take from a millisecond to a minute (HTTP, jobs, model calls). */
const LATENCY_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const JOB_STATES = ['waiting', 'active', 'delayed', 'failed', 'completed'] as const;
/** An execution runs several model calls in a row, possibly a human's approval: up to an hour. */
const FLOW_BUCKETS = [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600];
/**
 * Flows a process labels by id in the flow histograms: the first ones it sees; any later one is
 * counted under `flow_id="other"` (and its nodes under `node_id="other"`), so a deployment with
 * many flows keeps a bounded number of series.
 */
export const MAX_LABELLED_FLOWS = 200;

/**
 * Every Prometheus metric of a process, on one registry, prefixed `switchboard_`, with variants as
 * labels. Built once per process and passed to whoever records.
 */
export class Metrics {
  readonly registry = new Registry();
  /** Tool executions, database statements and pool, in-memory caches. */
  readonly resources = new ResourceMetrics(this.registry);

  readonly httpDuration = new Histogram({
    name: 'switchboard_http_request_duration_seconds',
    help: 'HTTP request duration by route template and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  readonly httpRequests = new Counter({
    name: 'switchboard_http_requests_total',
    help: 'HTTP requests by route template and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });

  readonly jobDuration = new Histogram({
    name: 'switchboard_job_duration_seconds',
    help: 'Job processing time by queue and outcome',
    labelNames: ['queue', 'outcome'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  readonly llmTokens = new Counter({
    name: 'switchboard_llm_tokens_total',
    help: 'LLM tokens by provider, model, tier and direction (input|output)',
    labelNames: ['provider', 'model', 'tier', 'direction'] as const,
    registers: [this.registry],
  });

  readonly llmCost = new Counter({
    name: 'switchboard_llm_cost_usd_total',
    help: 'LLM cost in USD by provider, model and tier (from the pricing table)',
    labelNames: ['provider', 'model', 'tier'] as const,
    registers: [this.registry],
  });

  readonly budgetReservations = new Counter({
    name: 'switchboard_budget_reservations_total',
    help: 'Budget reservations by where they were taken (admit: before enqueue, call: before a model call) and result (taken|refused)',
    labelNames: ['stage', 'result'] as const,
    registers: [this.registry],
  });

  readonly budgetRejections = new Counter({
    name: 'switchboard_budget_rejections_total',
    help: 'Requests and model calls refused by a budget, by window (hour|month), limit (tokens|requests|cost) and tier',
    labelNames: ['window', 'limit', 'tier'] as const,
    registers: [this.registry],
  });

  readonly budgetSettlementSeconds = new Histogram({
    name: 'switchboard_budget_settlement_lag_seconds',
    help: 'How long a budget reservation was held before it was settled, by how (call|reaper|release)',
    labelNames: ['by'] as const,
    buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 900, 1800, 3600],
    registers: [this.registry],
  });

  readonly budgetNearLimit = new Counter({
    name: 'switchboard_budget_near_limit_total',
    help: 'Reservations taken while the user had used 80 % or more of a monthly limit, by tier',
    labelNames: ['tier'] as const,
    registers: [this.registry],
  });

  readonly llmRequestSeconds = new Histogram({
    name: 'switchboard_llm_request_seconds',
    help: 'Model call duration (request to last chunk) by provider, model and purpose',
    labelNames: ['provider', 'model', 'purpose'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  readonly llmTtftSeconds = new Histogram({
    name: 'switchboard_llm_ttft_seconds',
    help: 'Time to the first streamed token or tool-call delta by provider, model and purpose',
    labelNames: ['provider', 'model', 'purpose'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  readonly sockets = new Gauge({
    name: 'switchboard_socket_connections',
    help: 'Open Socket.IO connections on this node by namespace',
    labelNames: ['namespace'] as const,
    registers: [this.registry],
  });

  readonly broadcastChunks = new Counter({
    name: 'switchboard_broadcast_chunks_total',
    help: 'blocks_bulk_added_chunk messages sent',
    registers: [this.registry],
  });

  readonly deviceRpcDuration = new Histogram({
    name: 'switchboard_device_rpc_duration_seconds',
    help: 'Device tool call round trip by action and outcome',
    labelNames: ['action', 'outcome'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  readonly deviceRpcTimeouts = new Counter({
    name: 'switchboard_device_rpc_timeouts_total',
    help: 'Device tool calls that got no answer in time',
    labelNames: ['action'] as const,
    registers: [this.registry],
  });

  readonly approvals = new Counter({
    name: 'switchboard_approvals_total',
    help: 'Human approvals of dangerous tool calls by outcome (requested|approved|rejected|timeout) and tool; approval rate = approved / decided',
    labelNames: ['outcome', 'tool'] as const,
    registers: [this.registry],
  });

  /** The coding agents' tool calls on a device's project, timed from the call to its result. */
  readonly codeToolSeconds = new Histogram({
    name: 'switchboard_code_tool_seconds',
    help: "Coding agents' tool calls by tool, agent and outcome (ok|error)",
    labelNames: ['tool', 'agent', 'outcome'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  /** Coding turns that ended, by the agent that answered and how (completed|failed|cancelled|parked). */
  readonly codingTurns = new Counter({
    name: 'switchboard_coding_turns_total',
    help: 'Coding turns by the agent at work and how the turn (or its part) ended: completed, failed, cancelled, parked',
    labelNames: ['agent', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly agentRuns = new Counter({
    name: 'switchboard_agent_runs_total',
    help: 'Finished background agent runs by agent type and status',
    labelNames: ['type', 'status'] as const,
    registers: [this.registry],
  });

  readonly flowExecutions = new Counter({
    name: 'switchboard_flow_executions_total',
    help: 'Finished flow executions by flow type (chatflow|agentflow) and status; a chatflow chat turn is one execution',
    labelNames: ['type', 'status'] as const,
    registers: [this.registry],
  });

  readonly flowNodeSeconds = new Histogram({
    name: 'switchboard_flow_node_seconds',
    help: 'Agentflow node run time (its first start to its output, retries and items included) by flow, node and outcome',
    labelNames: ['flow_id', 'node_id', 'status'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  readonly flowExecutionSeconds = new Histogram({
    name: 'switchboard_flow_execution_seconds',
    help: 'Agentflow execution time (accepted to ended, queueing included) by flow and outcome',
    labelNames: ['flow_id', 'status'] as const,
    buckets: FLOW_BUCKETS,
    registers: [this.registry],
  });

  /** The flows this process labels by id (see {@link MAX_LABELLED_FLOWS}). */
  private readonly labelledFlows = new Set<string>();

  /** What the scrape-time gauges read, once the api role says (until then they stay at zero). */
  private openStreams?: () => number;
  private queueCounts?: {
    queues: QueueName[];
    counts: (queue: QueueName) => Promise<Record<string, number>>;
    failed: (queue: QueueName, error: unknown) => void;
  };

  readonly sseStreams: Gauge = new Gauge({
    name: 'switchboard_sse_streams_open',
    help: 'SSE streams (generation, chat, notes) open on this node, read at scrape time',
    registers: [this.registry],
    collect: () => {
      if (this.openStreams) this.sseStreams.set(this.openStreams());
    },
  });

  readonly queueJobs: Gauge<'queue' | 'state'> = new Gauge({
    name: 'switchboard_queue_jobs',
    help: 'Jobs per queue and state, read from Redis at scrape time',
    labelNames: ['queue', 'state'] as const,
    registers: [this.registry],
    collect: async () => {
      const source = this.queueCounts;
      if (!source) return;
      await Promise.all(
        source.queues.map(async (queue) => {
          let byState: Record<string, number>;
          try {
            byState = await source.counts(queue);
          } catch (error) {
            // The scrape still answers: this queue keeps its last values, and the next scrape asks again.
            source.failed(queue, error);
            return;
          }
          for (const state of JOB_STATES) this.queueJobs.set({ queue, state }, byState[state] ?? 0);
        }),
      );
    },
  });

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'switchboard_' });
  }

  /** Counts one model call's tokens (input, output) and cost under its provider, model and tier. */
  countModelCall(
    labels: { provider: string; model: string; tier: string },
    tokens: { inputTokens: number; outputTokens: number },
    costUsd: number,
  ): void {
    this.llmTokens.inc({ ...labels, direction: 'input' }, tokens.inputTokens);
    this.llmTokens.inc({ ...labels, direction: 'output' }, tokens.outputTokens);
    this.llmCost.inc(labels, costUsd);
  }

  /** Latency of one model call, and its time to first token when anything streamed. */
  observeModelCall(labels: { provider: string; model: string; purpose: string }, seconds: number, ttftSeconds?: number): void {
    this.llmRequestSeconds.observe(labels, seconds);
    if (ttftSeconds !== undefined) this.llmTtftSeconds.observe(labels, ttftSeconds);
  }

  /** A flow's `flow_id` label: its id while this process labels fewer than {@link MAX_LABELLED_FLOWS} flows, else `other`. */
  private flowLabel(flowId: string): string {
    if (this.labelledFlows.has(flowId)) return flowId;
    if (this.labelledFlows.size >= MAX_LABELLED_FLOWS) return 'other';
    this.labelledFlows.add(flowId);
    return flowId;
  }

  /** One agentflow node's time, under its flow and node. */
  observeFlowNode(labels: { flowId: string; nodeId: string; status: string }, seconds: number): void {
    const flow = this.flowLabel(labels.flowId);
    this.flowNodeSeconds.observe({ flow_id: flow, node_id: flow === 'other' ? 'other' : labels.nodeId, status: labels.status }, seconds);
  }

  /** One agentflow execution's time, under its flow. */
  observeFlowExecution(labels: { flowId: string; status: string }, seconds: number): void {
    this.flowExecutionSeconds.observe({ flow_id: this.flowLabel(labels.flowId), status: labels.status }, seconds);
  }

  /** Reads the number of open SSE streams at scrape time. */
  trackOpenStreams(count: () => number): void {
    this.openStreams = count;
  }

  /** Reads each queue's job counts at scrape time; `failed` hears of a queue whose counts could not be read. */
  trackQueues(
    queues: QueueName[],
    counts: (queue: QueueName) => Promise<Record<string, number>>,
    failed: (queue: QueueName, error: unknown) => void,
  ): void {
    this.queueJobs.reset();
    this.queueCounts = { queues, counts, failed };
  }
}

/**
 * True when `/metrics` may be served: no METRICS_TOKEN configured, or the request carries
 * `Authorization: Bearer <METRICS_TOKEN>` (compared in constant time).
 */
export function metricsAuthorized(header: string | undefined, token: string | undefined): boolean {
  if (!token) return true;
  if (!header?.startsWith('Bearer ')) return false;
  const given = Buffer.from(header.slice(7).trim());
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** The operator-secret back-off a presented METRICS_TOKEN is checked behind (the login throttle). */
export interface OperatorSecretCheck {
  checkOperatorSecret(ip: string, matches: () => boolean): Promise<boolean>;
}

/**
 * Whether `/metrics` may be served to this request: no METRICS_TOKEN configured, or a Bearer token
 * that matches it. A presented Bearer is a guess at the token and is checked behind the one per-IP
 * back-off of every operator secret: a locked address is refused (429) before any comparison.
 */
export async function metricsAllowed(
  header: string | undefined,
  token: string | undefined,
  ip: string,
  secrets: OperatorSecretCheck,
): Promise<boolean> {
  if (!token) return true;
  if (!header?.startsWith('Bearer ')) return false;
  return secrets.checkOperatorSecret(ip, () => metricsAuthorized(header, token));
}
