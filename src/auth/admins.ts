import { userInfo, hostname } from 'node:os';
import type { AdminsRepository, AdminTarget } from '../models/admins-repository';

export { ADMIN_GRANTED, ADMIN_REVOKED, OPERATOR_ACTOR_ID } from '../models/admins-repository';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** What a grant or revoke did, for the CLI to print. */
export interface AdminChange {
  user: AdminTarget;
  /** false when the user already was (grant) or was not (revoke) an admin: nothing written. */
  changed: boolean;
}

/** Thrown when the named user does not exist or cannot be an admin; the CLI prints the message. */
export class AdminTargetError extends Error {
  override name = 'AdminTargetError';
}

/**
 * Who is an admin: a user whose id is in ADMIN_USER_IDS, or whose `users.role` an operator
 * set to `admin` with `switchboard admin grant`. Never an email match, never the token's `role`
 * claim alone: the database is read on every check, so a revoke takes effect at the next request.
 */
export class AdminDirectory {
  private readonly envIds: ReadonlySet<string>;

  constructor(
    private readonly admins: Pick<AdminsRepository, 'roleOf' | 'setRole' | 'recordEnvGrant'>,
    envUserIds: readonly string[] = [],
  ) {
    this.envIds = new Set(envUserIds.map((id) => id.toLowerCase()));
  }

  /** True when `userId` holds admin rights right now. */
  async isAdmin(userId: string): Promise<boolean> {
    // Not a uuid: nobody (and no query that the uuid column would refuse with an error).
    if (!UUID.test(userId)) return false;
    const role = await this.admins.roleOf(userId);
    if (!role || role === 'service') return false;
    return role === 'admin' || this.envIds.has(userId.toLowerCase());
  }

  /** Sets the admin flag of the user named by email (as stored: lower-cased) or id; audited. */
  grant(who: string): Promise<AdminChange> {
    return this.change(who, 'admin');
  }

  /** Clears the admin flag; audited. ADMIN_USER_IDS, if it names the user, still applies (the CLI says so). */
  revoke(who: string): Promise<AdminChange> {
    return this.change(who, 'user');
  }

  /** True when ADMIN_USER_IDS names this user (revoking the flag leaves them an admin). */
  namedByEnv(userId: string): boolean {
    return this.envIds.has(userId.toLowerCase());
  }

  /**
   * Audits the env grants once each: for every ADMIN_USER_IDS id of an existing user without an
   * env grant row yet, writes one. Returns the ids that name no user (the caller warns).
   */
  async recordEnvGrants(): Promise<string[]> {
    const unknown: string[] = [];
    for (const id of this.envIds) {
      if (!(await this.admins.recordEnvGrant(id, { via: 'env', variable: 'ADMIN_USER_IDS' }))) unknown.push(id);
    }
    return unknown;
  }

  private async change(who: string, role: 'admin' | 'user'): Promise<AdminChange> {
    const target = who.trim();
    const named = UUID.test(target) ? { id: target } : { email: target };
    const result = await this.admins.setRole(named, role, { via: 'cli', osUser: safeUserName(), host: hostname() });
    if (result.outcome === 'missing')
      throw new AdminTargetError(`No user ${target}: they must register first (the grant names an existing account).`);
    if (result.outcome === 'service') throw new AdminTargetError(`${target} is a service account and cannot be an admin.`);
    return { user: result.user, changed: result.outcome === 'changed' };
  }
}

function safeUserName(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}
