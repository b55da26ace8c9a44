import type { QueueName } from '../../config';
import { QUEUE_NAMES } from '../../config';
import { AppError, notFound } from '../lib/errors';
import type { Logger } from '../lib/logger';
import type { AccountRepository, AccountDeletion } from '../models/account-repository';

/** What must happen outside the database once an account is gone. */
export interface AccountDeletionEffects {
  /** Closes every socket and device connection of these sessions (and API keys), on every node. */
  revokeSessions(userId: string, sessionIds: string[]): Promise<void>;
  /** Drops a waiting job of a run that no longer has a row. */
  removeJob(queue: QueueName, jobId: string): Promise<unknown>;
  /** Forgets the event log of a deleted canvas. */
  forgetCanvas(canvasId: string): Promise<void>;
}

const isQueue = (name: string): name is QueueName => (QUEUE_NAMES as readonly string[]).includes(name);

/**
 * Deleting an account (DELETE /me): the caller confirms with their own email; the database change
 * is one transaction (see `AccountRepository.deleteUser`); then the live side follows — every
 * session's and key's sockets are closed on every node, waiting jobs of the user's runs are
 * dropped, deleted canvases' event logs forgotten. Tokens need nothing more: each request checks
 * its user and session in the database, and both are gone.
 */
export class AccountService {
  constructor(
    private readonly account: AccountRepository,
    private readonly effects: AccountDeletionEffects,
    private readonly logger: Logger,
  ) {}

  async delete(user: { id: string; email: string }, confirm: string): Promise<AccountDeletion> {
    if (confirm.trim().toLowerCase() !== user.email.toLowerCase())
      throw new AppError(400, 'confirmation_mismatch', 'To delete your account, send your account email as `confirm`', [
        { path: 'confirm', message: 'does not match the account email' },
      ]);
    const deleted = await this.account.deleteUser(user.id, { via: 'api' });
    if (!deleted) throw notFound('User');
    const log = this.logger.child({ userId: user.id });
    log.info(
      { canvasesDeleted: deleted.canvasesDeleted.length, canvasesTransferred: deleted.canvasesTransferred.length },
      'account deleted',
    );
    // The rows are gone whatever happens below: a failure here is logged, never reported as a failed deletion.
    const results = await Promise.allSettled([
      this.effects.revokeSessions(user.id, deleted.sessionIds),
      ...deleted.openRuns.filter((run) => isQueue(run.queue)).map((run) => this.effects.removeJob(run.queue as QueueName, run.jobId)),
      ...deleted.canvasesDeleted.map((canvasId) => this.effects.forgetCanvas(canvasId)),
    ]);
    for (const result of results)
      if (result.status === 'rejected')
        log.warn({ err: result.reason }, 'an account deletion effect failed; the reaper and expiries finish it');
    return deleted;
  }
}
