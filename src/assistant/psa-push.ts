import { randomUUID } from 'node:crypto';
import { UnrecoverableError, type Job } from 'bullmq';
import { PsaError, type PsaConnections } from '../connectors/psa';
import { SecretBoxError } from '../connectors/secret-box';
import type { Logger } from '../lib/logger';
import type { Repositories } from '../models';
import type { PsaPushStatus } from '../models/psa-repository';
import type { ChatSessionRow } from '../models/schema';
import type { PsaPushJob } from '../producers/psa';
import type { Enqueue } from '../producers/registry';

/** How a session's push to the PSA stands, as the resolve and the session answer it. */
export interface PsaPushState {
  psaPushStatus: PsaPushStatus;
  psaPushError: string | null;
  memberMappingWarning: string | null;
}

export const NO_TICKET =
  'No PSA ticket id was given for this session: resolve it with psaTicketId (or start it with psa_ticket_id in its context) to push its notes';

/** A PSA ticket number as a resolve takes it: 1 to 12 digits, no leading zero. */
const TICKET_NUMBER = /^[1-9]\d{0,11}$/;

/**
 * The PSA ticket an app named in the session's context (`psa_ticket_id` or `psaTicketId`, a
 * ticket number as text or a whole number), when it names one; anything else names none.
 */
export function contextTicket(context: Record<string, unknown> | null): string | undefined {
  const value = context?.psaTicketId ?? context?.psa_ticket_id;
  const text = typeof value === 'number' && Number.isSafeInteger(value) ? String(value) : typeof value === 'string' ? value.trim() : '';
  return TICKET_NUMBER.test(text) ? text : undefined;
}

/**
 * Pushing a resolved session's ticket notes to its owner's PSA. The resolve decides
 * what happens (no PSA: `no_psa`; no ticket: `failed`; else the push is claimed, `pending_retry`);
 * the push itself runs on the `psa` queue once the notes exist, retried while the PSA is down.
 */
export class PsaPush {
  constructor(
    private readonly deps: {
      repos: Pick<Repositories, 'psa' | 'chat'>;
      psa: PsaConnections;
      enqueue: Enqueue;
      logger: Logger;
    },
  ) {}

  /**
   * At resolve or escalate: records the ticket (given, else named by the session's context) and
   * settles what the push will be. The push is queued now when the notes are already written,
   * else when they are (see {@link notesReady}).
   * Notes already sent to the same ticket are not sent again.
   */
  async onResolve(userId: string, session: ChatSessionRow, given: string | undefined): Promise<PsaPushState> {
    const { repos } = this.deps;
    // The ticket given now, else the one the session has, else the one its context names.
    const ticketId = given ?? (session.psaTicketId ? undefined : contextTicket(session.context));
    const ticketChanged = ticketId !== undefined && ticketId !== session.psaTicketId;
    if (ticketChanged) await repos.psa.setTicket(userId, session.id, ticketId);
    if (!(await this.deps.psa.connected(userId))) {
      await repos.psa.setPush(session.id, { status: 'no_psa', memberMappingWarning: null });
      return { psaPushStatus: 'no_psa', psaPushError: null, memberMappingWarning: null };
    }
    const ticket = ticketId ?? session.psaTicketId;
    if (!ticket) {
      await repos.psa.setPush(session.id, { status: 'failed', error: NO_TICKET, memberMappingWarning: null });
      return { psaPushStatus: 'failed', psaPushError: NO_TICKET, memberMappingWarning: null };
    }
    // A new ticket gets the notes even when another ticket already has them.
    if (ticketChanged && session.psaPushStatus === 'sent') await repos.psa.setPush(session.id, { status: 'failed', error: null });
    const claimed = await repos.psa.claimPush(session.id);
    if (claimed?.notesReady) await this.queue(userId, session.id, claimed.claim);
    const current = await repos.chat.findOwned(userId, session.id);
    return stateOf(current ?? session);
  }

  /** After the notes were stored: queues the push a resolve claimed. */
  async notesReady(userId: string, sessionId: string): Promise<void> {
    const session = await this.deps.repos.chat.findOwned(userId, sessionId);
    // A claim made before claims had ids (an upgrade) gets one here.
    if (session?.psaPushStatus === 'pending_retry') await this.queue(userId, sessionId, session.psaPushClaim ?? randomUUID());
  }

  /** Both the resolve and the finished notes may queue one claim's push: its id makes it one job. */
  private async queue(userId: string, sessionId: string, claim: string): Promise<void> {
    try {
      await this.deps.enqueue('psa', 'push-notes', { userId, sessionId, pushId: claim });
    } catch (error) {
      this.deps.logger.warn({ err: error, sessionId }, 'PSA push not queued');
      await this.deps.repos.psa.setPush(sessionId, { status: 'failed', error: 'The push could not be queued; resolve the session again' });
    }
  }

  /** The `psa/push-notes` job: one try of the push; a try the PSA may accept later is retried by BullMQ. */
  async process(data: PsaPushJob, job: Job): Promise<{ status: PsaPushStatus }> {
    const { repos } = this.deps;
    const log = this.deps.logger.child({ component: 'psa-push', jobId: job.id, sessionId: data.sessionId });
    const session = await repos.chat.findOwned(data.userId, data.sessionId);
    if (!session) throw new UnrecoverableError('The session no longer exists');
    // A push queued again after its claim was sent, failed or claimed anew has nothing left to do.
    if (session.psaPushStatus !== 'pending_retry' || (session.psaPushClaim ?? data.pushId) !== data.pushId)
      return { status: session.psaPushStatus ?? 'no_psa' };
    const fail = async (message: string) => {
      await repos.psa.setPush(session.id, { status: 'failed', error: message });
      throw new UnrecoverableError(message);
    };
    if (!session.documentation) return fail('The session has no ticket notes to push');
    if (!session.psaTicketId) return fail(NO_TICKET);
    try {
      const resolution = session.status !== 'escalated';
      const pushed = await this.deps.psa.pushNotes(data.userId, session.psaTicketId, session.documentation, resolution);
      if (!pushed) {
        await repos.psa.setPush(session.id, { status: 'no_psa', memberMappingWarning: null });
        return { status: 'no_psa' };
      }
      await repos.psa.setPush(session.id, { status: 'sent', memberMappingWarning: pushed.memberMappingWarning });
      log.info({ memberMapped: pushed.memberMappingWarning === null }, 'ticket notes pushed to the PSA');
      return { status: 'sent' };
    } catch (error) {
      if (error instanceof SecretBoxError) return fail('The PSA credentials could not be opened; connect the PSA again');
      if (!(error instanceof PsaError)) throw error;
      const lastTry = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      log.warn({ code: error.code, retryable: error.retryable, lastTry }, 'PSA push failed');
      if (!error.retryable || lastTry) return fail(error.message);
      await repos.psa.setPush(session.id, { status: 'pending_retry', error: error.message });
      throw error;
    }
  }
}

/** A session's push state as answered. */
export function stateOf(session: Pick<ChatSessionRow, 'psaPushStatus' | 'psaPushError' | 'memberMappingWarning'>): PsaPushState {
  return {
    psaPushStatus: session.psaPushStatus ?? 'no_psa',
    psaPushError: session.psaPushError,
    memberMappingWarning: session.memberMappingWarning,
  };
}
