import { RateLimitError, UnrecoverableError } from 'bullmq';
import { describeRedacted } from '../lib/redact-error';
import type { Config } from '../../config';
import { ModelStoppedEarly, type ModelGateway } from '../ai/model-gateway';
import { fetchItems } from '../connectors';
import { ConnectorError, ProviderRateLimitedError, ReauthRequiredError, type ConnectorItem } from '../connectors/types';
import type { DeviceRegistry } from '../devices/device-registry';
import type { DevicePort } from '../devices/device-channel';
import { DeviceRpcError } from '../devices/device-rpc';
import type { CancelSignals } from '../lib/cancel-signals';
import type { Logger } from '../lib/logger';
import type { Repositories } from '../models';
import type { AgentRef } from '../models/agents-repository';
import type { AgentRunRow, CloudAgentRow } from '../models/schema';
import type { Metrics } from '../observability/metrics';
import type { AgentRunJob } from '../producers/agent-runs';
import type { Enqueue } from '../producers/registry';
import type { CredentialVault } from './credentials';
import { readDeviceFiles } from './device-files';
import { deviceInsertFor, extractItems, guardedDocument, type ExtractionDocument } from './extraction';
import type { AgentRunChannel } from './run-channel';
import { countsOf, deviceWaitpoint, toKernelOutcome, type AgentRuns } from './agent-run';
import { isOpen } from '../runs/run-kernel';
import { BudgetExceededError, type BudgetTicket } from '../budget/budget-door';
import { RunTimedOutError, type AgentRunCounts, type AgentRunOutcome } from './run-outcome';
import { invokeAgentAttributes } from '../observability/genai';
import { withSpan } from '../observability/tracing';
import type { DeviceRunLease } from './device-run-lease';

export interface AgentRunnerDeps {
  config: Config;
  repos: Repositories;
  /** Hands a fetched cloud run on to `agent-runs`. */
  enqueue: Enqueue;
  /** Pauses the whole `connectors` queue for a provider's Retry-After (every worker honours it). */
  pauseConnectors: (ms: number) => Promise<unknown>;
  /** The user's devices: `agent_run`, suggestion inserts, and whether the device went away. */
  devices: DevicePort;
  registry: DeviceRegistry;
  channel: AgentRunChannel;
  vault: CredentialVault;
  models: ModelGateway;
  /** Cancel requests from any API node: a run watches its own while it works. */
  signals: Pick<CancelSignals, 'watch'>;
  /** Agent runs on the run kernel: every start and end of a run goes through it. */
  runs: AgentRuns;
  logger: Logger;
  metrics?: Metrics;
  /** One run at a time per device; without it runs of one device may overlap. */
  deviceLease?: Pick<DeviceRunLease, 'take' | 'release'>;
  /**
   * Told once a cloud run's fetched items are stored (again on a retry: what it starts is keyed by
   * the run): the flows' connector triggers fire from here. A failure is logged, never the run's.
   */
  onFetched?: (event: FetchedEvent) => Promise<void>;
}

/** A cloud agent run's fetched mails and messages, as connector triggers receive them. */
export interface FetchedEvent {
  agentId: string;
  userId: string;
  runId: string;
  provider: string;
  items: ReadonlyArray<Pick<ConnectorItem, 'id' | 'kind' | 'subject' | 'sender' | 'date' | 'text'>>;
}

/**
 * What a job hands back (its return value, visible in the dashboard): the run's outcome once it
 * ended (`ended` false when a cancel or another end was written first), or where it went on.
 */
export type AgentRunJobResult =
  | { runId: string; outcome: AgentRunOutcome['status']; ended: boolean; itemsProcessed: number; itemsCreated: number; errors: number }
  | { runId: string; handedOn: 'agent-runs'; itemsFetched: number }
  | { runId: string; waiting: 'device' }
  | { runId: string; skipped: string }
  /** Another run of its device is running: the job goes back to its queue (nothing was written). */
  | { runId: string; deviceBusy: string };

/** The device went away during the run. */
class DeviceGoneError extends Error {
  constructor(deviceId: string) {
    super(`device disconnected (${deviceId})`);
  }
}

/** A fetched mail or chat message, as kept on the run until a device takes its suggestions. */
type FetchedDocument = Pick<ConnectorItem, 'id' | 'kind' | 'subject' | 'sender' | 'date' | 'text'>;

/**
 * Runs background agents.
 *
 * Cloud: {@link fetch} (on `connectors`) reads the provider since the agent's last run, one item at
 * a time, keeps the items on the run row, then queues {@link run}. Local: {@link run} sends
 * `agent_run` to the agent's device and collects its `agent_data` frames. Either way each document
 * goes to the extraction model with the agent's prompt template, and each item is inserted on the
 * device as a suggestion (`isAiSuggested: 1, isApproved: 0`) through the device RPC. With no
 * suitable device online the run waits (`waiting_device`) until that device says `device_hello`.
 */
export class AgentRunner {
  private readonly log: Logger;

  constructor(private readonly deps: AgentRunnerDeps) {
    this.log = deps.logger.child({ component: 'agent-runner' });
  }

  /* ---- connectors: fetch a cloud agent's items --------------------------------------------- */

  async fetch(job: AgentRunJob, attempt: { last: boolean } = { last: true }): Promise<AgentRunJobResult> {
    // The run's reservation travels on with a handed-on run; the kernel gives back what no call took when the run ends.
    await this.deps.runs.hold(job.runId, { userId: job.userId, reservationId: job.budget });
    return this.fetchRun(job, attempt);
  }

  /** Tells {@link AgentRunnerDeps.onFetched} what a run fetched (nothing when it fetched nothing). */
  private async announceFetched(
    agent: { id: string; userId: string; provider: string },
    runId: string,
    items: FetchedEvent['items'],
  ): Promise<void> {
    if (!items.length || !this.deps.onFetched) return;
    try {
      await this.deps.onFetched({ agentId: agent.id, userId: agent.userId, runId, provider: agent.provider, items });
    } catch (error) {
      this.log.warn({ err: error, agentId: agent.id, runId }, 'connector triggers not told of fetched items');
    }
  }

  private async fetchRun(job: AgentRunJob, attempt: { last: boolean }): Promise<AgentRunJobResult> {
    const { repos, config } = this.deps;
    const ref = await repos.agents.findById('cloud', job.agentId);
    if (!ref || ref.kind !== 'cloud') return { runId: job.runId, skipped: 'the agent was deleted' };
    const agent = ref.agent;
    const run = await this.startRun(job, null);
    if (!run) return { runId: job.runId, skipped: 'this slot already ran' };
    const refused = await this.begin(run);
    if (refused) return refused;
    if (run.fetched) {
      // A retry after the items were stored (and last_run_at moved): hand them on, do not fetch again.
      await this.announceFetched(agent, run.id, run.fetched as FetchedDocument[]);
      await this.deps.enqueue('agent-runs', 'agent-run', job);
      return { runId: run.id, handedOn: 'agent-runs', itemsFetched: run.fetched.length };
    }
    const none = { itemsProcessed: 0, itemsCreated: 0, errors: [] };
    if (!agent.credentialId || agent.status === 'reauth_required') {
      const message = `the ${agent.provider} account is not connected (or must be reconnected)`;
      return this.end(run, { status: 'failed', code: 'not_connected', message, ...none });
    }
    const stored = await this.deps.vault.load(agent.credentialId);
    if (!stored)
      return this.end(run, { status: 'failed', code: 'not_connected', message: `the ${agent.provider} account is not connected`, ...none });

    const fetchStarted = new Date();
    const documents: FetchedDocument[] = [];
    const errors: string[] = [];
    const cancel = this.deps.signals.watch('agent-run', run.id);
    try {
      for await (const result of fetchItems({
        provider: agent.provider,
        settings: config.oauth,
        tokens: stored.tokens,
        onTokens: (tokens) => this.deps.vault.save(agent.credentialId!, tokens),
        filter: agent.filterConfig,
        since: agent.lastRunAt ?? undefined,
        maxItems: config.agents.maxFiles,
      })) {
        if ('item' in result) {
          const { id, kind, subject, sender, date, text } = result.item;
          documents.push({ id, kind, subject, sender, date, text });
        } else errors.push(`${agent.provider} item ${result.error.id}: ${result.error.message}`);
        if (cancel.signal.aborted) break;
      }
    } catch (error) {
      if (error instanceof ProviderRateLimitedError) {
        // Not a failure: the whole connectors queue pauses for Retry-After and the job runs again.
        this.log.warn(
          { agentId: agent.id, runId: run.id, retryAfterMs: error.retryAfterMs },
          'provider rate limit: pausing the connectors queue',
        );
        await this.deps.pauseConnectors(error.retryAfterMs);
        throw new RateLimitError();
      }
      if (error instanceof ReauthRequiredError) {
        // Every agent using this credential needs the reconnect, not only this one.
        await repos.agents.markCredentialRevoked(agent.credentialId);
        const message = `reauth_required: the ${agent.provider} account must be reconnected`;
        await this.end(run, { status: 'failed', code: 'reauth_required', message, ...none, errors });
        throw new UnrecoverableError(message);
      }
      const retryable = error instanceof ConnectorError ? error.retryable : true;
      if (!retryable || attempt.last) {
        // No further attempt: the run ends here instead of staying `running` forever.
        // The run's errors are shown to the user and kept on the job: the class and code, not the provider's text.
        const message = describeRedacted(error);
        await this.end(run, {
          status: 'failed',
          code: 'fetch_failed',
          message: `${agent.provider} fetch failed: ${message}`,
          ...none,
          errors,
        });
        throw new UnrecoverableError(message);
      }
      throw error;
    } finally {
      cancel.release();
    }
    // Cancelled while fetching: nothing is kept, and the next run reads from where this one began.
    if (cancel.signal.aborted) return this.end(run, { status: 'cancelled', ...none });
    await repos.agents.updateRun(run.id, { fetched: documents, errors, itemsProcessed: 0 });
    // The next run reads from here on; the fetched items are safe on the run row.
    await repos.agents.setLastRunAt('cloud', agent.id, fetchStarted);
    await this.announceFetched(agent, run.id, documents);
    await this.deps.enqueue('agent-runs', 'agent-run', job);
    return { runId: run.id, handedOn: 'agent-runs', itemsFetched: documents.length };
  }

  /* ---- agent-runs: read files / extract / deliver ------------------------------------------ */

  async run(job: AgentRunJob, attempt: { restarted?: boolean } = {}): Promise<AgentRunJobResult> {
    const lease = await this.holdDevice(job);
    // Its reservation stays with the job, which runs again once the device is free.
    if (lease === 'busy') return { runId: job.runId, deviceBusy: (await this.deviceOf(job))! };
    // One ticket for the run: its first model call takes over the reservation its request took.
    const ticket: BudgetTicket = { userId: job.userId, reservationId: job.budget };
    // What no model call takes (the run was skipped, failed or read nothing) the kernel gives back when the run ends.
    await this.deps.runs.hold(job.runId, ticket);
    try {
      return await withSpan(
        `invoke_agent ${job.agentType}_agent`,
        'internal',
        { ...invokeAgentAttributes({ name: `${job.agentType}_agent`, id: job.agentId }), 'switchboard.agent.run_id': job.runId },
        () => this.runWith(job, attempt, ticket, lease?.deviceId),
      );
    } finally {
      if (lease)
        await this.deps.deviceLease
          ?.release(job.userId, lease.deviceId, job.runId)
          .catch((error: unknown) => this.log.warn({ err: error, runId: job.runId }, 'device lease not released; it expires by itself'));
    }
  }

  /** The device a run will use: its resume's, a local agent's own, else the user's first online device. */
  private async deviceOf(job: AgentRunJob): Promise<string | undefined> {
    if (job.deviceId) return job.deviceId;
    const ref = await this.deps.repos.agents.findById(job.agentType, job.agentId);
    if (!ref) return undefined;
    return ref.kind === 'local' ? ref.agent.deviceId : (await this.deps.registry.onlineDevices(job.userId))[0]?.deviceId;
  }

  /** Takes the run's device for this run; `busy` while another run holds it, null when there is no device (or no lease). */
  private async holdDevice(job: AgentRunJob): Promise<{ deviceId: string } | 'busy' | null> {
    const { deviceLease } = this.deps;
    if (!deviceLease) return null;
    const deviceId = await this.deviceOf(job);
    if (!deviceId) return null;
    return (await deviceLease.take(job.userId, deviceId, job.runId)) ? { deviceId } : 'busy';
  }

  private async runWith(
    job: AgentRunJob,
    attempt: { restarted?: boolean },
    ticket: BudgetTicket,
    leased?: string,
  ): Promise<AgentRunJobResult> {
    const { repos, registry } = this.deps;
    const ref = await repos.agents.findById(job.agentType, job.agentId);
    if (!ref) return { runId: job.runId, skipped: 'the agent was deleted' };
    if (attempt.restarted) {
      // The worker running this job died (BullMQ handed the stalled job on). Some suggestions may
      // be on the device already: end the run instead of delivering them twice.
      const interrupted = await repos.agents.getRun(job.runId);
      if (interrupted?.status === 'running') {
        const cancelRequested = (await repos.runs.find('agent', job.runId))?.cancelRequestedAt;
        return this.end(
          interrupted,
          cancelRequested
            ? { status: 'cancelled', ...countsOf(interrupted) }
            : {
                status: 'failed',
                code: 'interrupted',
                message: 'interrupted: the worker running this run stopped; run the agent again',
                ...countsOf(interrupted),
              },
        );
      }
    }

    let run: AgentRunRow | null;
    let deviceId: string | undefined;
    if (job.deviceId) {
      // A resume: exactly one worker claims the waiting run.
      if (!(await repos.agents.claimWaitingRun(job.runId, job.deviceId))) return { runId: job.runId, skipped: 'no longer waiting' };
      run = await repos.agents.getRun(job.runId);
      deviceId = job.deviceId;
    } else {
      run = ref.kind === 'cloud' ? await repos.agents.getRun(job.runId) : await this.startRun(job, ref.agent.deviceId);
      if (!run) return { runId: job.runId, skipped: 'this slot already ran' };
      if (run.status !== 'running') return { runId: run.id, skipped: `the run is ${run.status}` };
      // Cancelled before it began (while queued, or between the fetch and this job): it ends here.
      const refused = await this.begin(run);
      if (refused) return refused;
      deviceId = ref.kind === 'local' ? ref.agent.deviceId : (leased ?? (await registry.onlineDevices(job.userId))[0]?.deviceId);
      const online = deviceId && (ref.kind === 'cloud' || (await registry.isOnline(job.userId, deviceId)));
      if (!online) return this.waitForDevice(run, ref);
    }
    if (!run || !deviceId) return { runId: job.runId, skipped: 'the run is gone' };
    if (job.deviceId) {
      // Cancelled while it waited for its device: it ends here.
      const refused = await this.begin(run);
      if (refused) return refused;
    }
    await repos.agents.updateRun(run.id, { deviceId });

    const progress: AgentRunCounts = { itemsProcessed: 0, itemsCreated: 0, errors: [...run.errors] };
    const gone = new AbortController();
    const cancel = this.deps.signals.watch('agent-run', run.id);
    // Either stops the run: the model stream and any device call it waits on are aborted at once.
    const stop = AbortSignal.any([gone.signal, cancel.signal]);
    const stopWatching = this.deps.devices.watchGone(job.userId, deviceId, () => gone.abort(new DeviceGoneError(deviceId)));
    let outcome: AgentRunOutcome;
    try {
      const documents =
        ref.kind === 'local'
          ? await readDeviceFiles(
              { devices: this.deps.devices, channel: this.deps.channel, limits: this.deps.config.agents },
              { run, agent: ref.agent, deviceId, errors: progress.errors, gone: stop },
            )
          : cloudDocuments(run, ref.agent);
      await this.extractAndDeliver(run, ref, deviceId, documents, progress, stop, ticket);
      outcome = naturalEnd(progress);
      // A run that read and delivered nothing does not count as the agent's last run.
      if (ref.kind === 'local' && outcome.status === 'succeeded') await repos.agents.setLastRunAt('local', ref.agent.id, run.startedAt);
    } catch (error) {
      if (cancel.signal.aborted) outcome = { status: 'cancelled', ...progress };
      else if (error instanceof RunTimedOutError) outcome = { status: 'timed_out', message: error.message, ...progress };
      else if (error instanceof BudgetExceededError) {
        this.log.info({ runId: run.id, agentId: ref.agent.id, userId: run.userId }, 'agent run stopped: its budget is spent');
        outcome = { status: 'failed', code: 'budget_exceeded', message: `budget_exceeded: ${error.message}`, ...progress };
      } else {
        const reason = gone.signal.aborted ? (gone.signal.reason as Error).message : error instanceof Error ? error.message : String(error);
        this.log.warn({ runId: run.id, agentId: ref.agent.id, deviceId, reason }, 'agent run failed');
        outcome = { status: 'failed', code: gone.signal.aborted ? 'device_gone' : 'run_failed', message: reason, ...progress };
      }
    } finally {
      stopWatching();
      cancel.release();
    }
    // The device may still be reading files for it: told to stop (dropped when it is offline).
    if (outcome.status === 'cancelled') this.deps.devices.send(job.userId, deviceId, 'agent_cancelled', { runId: run.id });
    return this.end(run, outcome);
  }

  /**
   * Moves the run to `running` on the kernel (its run is recorded first: a scheduled run's first,
   * or a run from before the kernel). Null when it goes on; else the job's result: ended here
   * `cancelled` when its cancel was requested, skipped when it had ended.
   */
  private async begin(run: AgentRunRow): Promise<AgentRunJobResult | null> {
    await this.deps.runs.create({ id: run.id, userId: run.userId });
    const { run: current, started } = await this.deps.runs.start(run.id);
    if (started) return null;
    if (current && isOpen(current)) return this.end(run, { status: 'cancelled', ...countsOf(run) });
    return { runId: run.id, skipped: `the run has ended (${current?.status ?? 'gone'})` };
  }

  /** Inserts the run row (idempotent per run id and per scheduled slot); null when the slot ran already. */
  private async startRun(job: AgentRunJob, deviceId: string | null): Promise<AgentRunRow | null> {
    // Its run first (a manual run has it from its request; a scheduled one gets it here), so a
    // cancel finds the run as soon as its row exists.
    await this.deps.runs.create({ id: job.runId, userId: job.userId });
    const inserted = await this.deps.repos.agents.insertRun({
      id: job.runId,
      agentId: job.agentId,
      agentType: job.agentType,
      userId: job.userId,
      trigger: job.trigger,
      slot: job.slot ? new Date(job.slot) : null,
      deviceId,
      status: 'running',
    });
    if (inserted) return inserted;
    // A manual run's row was written `queued` by its request: this worker takes it.
    const claimed = await this.deps.repos.agents.claimQueuedRun(job.runId, deviceId);
    if (claimed) return claimed;
    // Same run id: a retried job picks its own row up again.
    const existing = await this.deps.repos.agents.getRun(job.runId);
    if (existing) return existing.status === 'running' ? existing : null;
    // Another run has this scheduled slot: the run recorded for this job never runs.
    await this.deps.runs.end(job.runId, { status: 'failed', code: 'slot_taken', message: 'another run of this agent has this slot' });
    return null;
  }

  /**
   * No device to deliver to: the run waits. An agent keeps one waiting run — a later one (say,
   * the next scheduled slot while the laptop is still closed) is folded into it, so a device that
   * comes back after days runs the agent once, not once per missed slot.
   */
  private async waitForDevice(run: AgentRunRow, ref: AgentRef): Promise<AgentRunJobResult> {
    // The wait is a `device` waitpoint of its run, with a deadline, created before the row says the
    // run waits: a `device_hello` that finds the waiting row completes it.
    await this.deps.runs.block(run.id, [deviceWaitpoint(run, this.deps.config.agents.deviceWaitMs)]);
    try {
      await this.deps.repos.agents.updateRun(run.id, { status: 'waiting_device' });
      // A cancel asked while it was running finds it waiting now: it ends here instead of waiting.
      const latest = await this.deps.repos.agents.getRun(run.id);
      if (latest && (await this.deps.repos.runs.find('agent', run.id))?.cancelRequestedAt)
        return this.end(latest, { status: 'cancelled', ...countsOf(latest) });
      // The run is `waiting`: no worker slot, and (no model call ran) the reservation its request
      // took goes back. A device that came online meanwhile continues it at once.
      const parked = await this.deps.runs.wait(run.id);
      if (parked.state === 'refused' && latest) return this.end(latest, { status: 'cancelled', ...countsOf(latest) });
      this.log.info({ runId: run.id, agentId: ref.agent.id, state: parked.state }, 'agent run waits for its device');
      return { runId: run.id, waiting: 'device' };
    } catch (error) {
      if (!isUniqueViolation(error)) throw error;
      // A cloud run's items were fetched past `last_run_at`: they go along into the waiting run.
      if (ref.kind === 'cloud' && !(await this.deps.repos.agents.foldIntoWaitingRun(ref.agent.id, run.fetched ?? [], run.errors))) {
        // The waiting run was claimed meanwhile: this one waits in its place.
        return this.waitForDevice(run, ref);
      }
      await this.deps.repos.agents.deleteRun(run.id);
      await this.deps.runs.end(run.id, { status: 'succeeded', result: countsOf(run) }, { folded: true });
      return { runId: run.id, skipped: 'folded into the run already waiting for the device' };
    }
  }

  private async extractAndDeliver(
    run: AgentRunRow,
    ref: AgentRef,
    deviceId: string,
    documents: ExtractionDocument[],
    progress: AgentRunCounts,
    stop: AbortSignal,
    budget: BudgetTicket,
  ): Promise<void> {
    const { repos, devices } = this.deps;
    const { errors } = progress;
    const tier = (await repos.users.findById(run.userId))?.tier ?? 'free';
    for (const document of documents) {
      if (stop.aborted) throw stop.reason as Error;
      const guard = guardedDocument(document, this.deps.config.generation.promptGuard);
      if (guard.reasons.length)
        this.log.warn({ runId: run.id, source: document.source, reasons: guard.reasons }, 'document flagged by guard');
      if (guard.skip) {
        errors.push(guard.skip);
        continue;
      }
      let items;
      try {
        ({ items } = await extractItems(this.deps, {
          userId: run.userId,
          tier,
          promptTemplate: ref.agent.promptTemplate,
          dataTypes: ref.agent.dataTypes,
          document,
          signal: stop,
          budget,
          model: ref.agent.model ?? undefined,
        }));
      } catch (error) {
        if (stop.aborted) throw stop.reason as Error;
        // A spent budget refuses every later document too: the run ends here instead of trying each.
        if (error instanceof BudgetExceededError) throw error;
        // An answer the provider stopped early (output limit, content filter) names its code and reason.
        const reason = error instanceof ModelStoppedEarly ? `${error.code}: ${error.message}` : (error as Error).message;
        errors.push(`${document.source}: extraction failed (${reason})`);
        continue;
      }
      progress.itemsProcessed++;
      for (const item of items) {
        const insert = deviceInsertFor(item);
        if ('error' in insert) {
          errors.push(insert.error);
          continue;
        }
        try {
          await devices.callDevice(run.userId, deviceId, { action: 'insert', table: insert.table, data: insert.data }, { signal: stop });
          progress.itemsCreated++;
        } catch (error) {
          if (stop.aborted) throw stop.reason as Error;
          if (error instanceof DeviceRpcError && (error.code === 'disconnected' || error.code === 'offline'))
            throw new DeviceGoneError(deviceId);
          errors.push(`${document.source}: "${item.title}" was not inserted (${(error as Error).message})`);
        }
      }
      await repos.agents.updateRun(run.id, { itemsProcessed: progress.itemsProcessed, itemsCreated: progress.itemsCreated });
    }
  }

  /** Ends the run with its outcome (once: a cancel written first wins) and reports it as the job's result. */
  private async end(run: AgentRunRow, outcome: AgentRunOutcome): Promise<AgentRunJobResult> {
    const { outcome: ending, counts } = toKernelOutcome(outcome);
    const { won } = await this.deps.runs.end(run.id, ending, { counts });
    return {
      runId: run.id,
      outcome: outcome.status,
      ended: won,
      itemsProcessed: outcome.itemsProcessed,
      itemsCreated: outcome.itemsCreated,
      errors: outcome.errors.length,
    };
  }
}

/** A run that went through: succeeded (partly, with errors but something done), or failed with nothing done. */
function naturalEnd(progress: AgentRunCounts): AgentRunOutcome {
  const { errors, itemsProcessed, itemsCreated } = progress;
  if (errors.length === 0) return { status: 'succeeded', ...progress };
  if (itemsProcessed > 0 || itemsCreated > 0) return { status: 'succeeded', partial: true, ...progress };
  return { status: 'failed', code: 'nothing_delivered', message: errors.at(-1)!, ...progress };
}

/** How a document's source names the kind of item it came from. */
const SOURCE_KIND: Record<ConnectorItem['kind'], string> = {
  email: 'message',
  chat_message: 'chat message',
  channel_message: 'channel message',
};

function cloudDocuments(run: AgentRunRow, agent: CloudAgentRow): ExtractionDocument[] {
  return ((run.fetched ?? []) as FetchedDocument[]).map((item) => ({
    source: `${agent.provider} ${SOURCE_KIND[item.kind]} ${item.id}`,
    title: item.subject,
    text: [item.sender ? `From: ${item.sender}` : '', item.date ? `Date: ${item.date}` : '', item.text].filter(Boolean).join('\n'),
  }));
}

const isUniqueViolation = (error: unknown) =>
  (error as { code?: string })?.code === '23505' || (error as { cause?: { code?: string } })?.cause?.code === '23505';
