import { flushCompileCache } from 'node:module';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { ProviderProbe } from './ai/provider-probe';
import { callsModels as callsModelsOn, ConfigError, loadConfig, QUEUE_NAMES, TIERS, type Tier } from '../config';
import type { UserLimitOverrides } from '../config/tiers';

// The server, database and admin modules are imported by the commands that use them, so `--help`
// and usage errors answer without loading the whole application.

/** Errors whose message is the whole story (bad config, no Redis, no such user): no stack trace. */
const PLAIN_ERRORS = new Set([
  'ConfigError',
  'RedisUnavailableError',
  'AdminTargetError',
  'DatabaseInUseError',
  'BackupError',
  'StartCheckError',
]);

export const USAGE = `Usage: switchboard <command> [options]

Commands:
  start [--roles=api,worker,scheduler] [--queues=…] [--port=N]
                            the roles in SWITCHBOARD_ROLES (default: all) in one process; what \`npm start\` runs
  api [--port=N]            HTTP API and Socket.IO only
  worker [--queues=a,b]     BullMQ workers for the listed queues (default: WORKER_QUEUES, else all):
                            ${QUEUE_NAMES.join(', ')}
  scheduler                 the cron tick of agent and flow schedules only
  migrate                   apply pending database migrations, then exit
  backup [--dir=DIR | --file=PATH]
                            back the database up: pg_dump (custom format) for PostgreSQL, the data
                            directory for embedded PGlite (stop the server first); --dir (default
                            ./backups) names the file by its time and keeps 7 daily, 4 weekly and
                            12 monthly backups there
  restore <file> --yes      replace the database's contents with a backup's, then migrate
  admin grant <email|id>    give a registered user admin rights (queue dashboard, usage of all users); audited
  admin revoke <email|id>   take them away; audited
  users set-tier <id> <tier>
                            move a user to another tier (${TIERS.join(', ')}); audited, in effect at their next request
  users set-limits <id> <json|null>
                            replace a user's limit overrides over their tier, e.g.
                            '{"requestsPerMonth":500,"features":{"localModels":true}}'; null clears them; audited
  device --project <dir> [--url=URL] [--device-id=ID]
                            serve a project folder to the coding agents as one of your devices, until
                            stopped; signs in with SWITCHBOARD_TOKEN (an API key or access token), to
                            --url or SWITCHBOARD_URL (default http://127.0.0.1:3000)

Options:
  -h, --help                show this help

Everything else comes from the environment (see .env.example).`;

/** A wrong command line: printed with the usage, exit code 2. */
class UsageError extends Error {}
/** A well-formed command refused for one reason, which is all it prints (no usage). */
class Refusal extends UsageError {}

/** Which flags each command accepts; any other flag is a usage error. */
const FLAGS: Record<string, readonly string[]> = {
  start: ['roles', 'queues', 'port'],
  api: ['port'],
  worker: ['queues'],
  scheduler: [],
  migrate: [],
  backup: ['dir', 'file'],
  restore: ['yes'],
  admin: [],
  users: [],
  device: ['project', 'url', 'device-id'],
};

/**
 * Runs the `switchboard` command line. Resolves with the exit code for one-shot commands, or with
 * `running` once a server command started (it then exits on SIGTERM/SIGINT after draining).
 */
export async function runCli(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number | 'running'> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    if (!(error instanceof UsageError) && (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') !== true) throw error;
    process.stderr.write(
      error instanceof Refusal ? `switchboard: ${error.message}\n` : `switchboard: ${(error as Error).message}\n\n${USAGE}\n`,
    );
    return 2;
  }
  if (parsed.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const { command, values, positionals } = parsed;
  const withFlags: NodeJS.ProcessEnv = { ...env };
  if (values.roles) withFlags.SWITCHBOARD_ROLES = values.roles;
  if (values.queues) withFlags.WORKER_QUEUES = values.queues;
  if (values.port) withFlags.PORT = values.port;
  if (command === 'api' || command === 'worker' || command === 'scheduler') withFlags.SWITCHBOARD_ROLES = command;

  try {
    if (command === 'migrate') return await migrateCommand(withFlags);
    if (command === 'backup') return await backupCommand(withFlags, values);
    if (command === 'restore') return await restoreCommand(withFlags, positionals[0]);
    if (command === 'admin') return await adminCommand(withFlags, positionals[0] as 'grant' | 'revoke', positionals[1]);
    if (command === 'users') return await usersCommand(withFlags, positionals);
    if (command === 'device') return await (await import('./app/device-command')).deviceCommand(env, values);
    await serve(withFlags);
    return 'running';
  } catch (error) {
    if (error instanceof ConfigError || (error instanceof Error && PLAIN_ERRORS.has(error.name))) {
      process.stderr.write(`\n${error.message}\n\n`);
    } else {
      process.stderr.write(`\nswitchboard ${command} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    }
    return 1;
  }
}

function parse(argv: string[]) {
  const { values, positionals } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: true,
    options: {
      roles: { type: 'string' },
      queues: { type: 'string' },
      port: { type: 'string' },
      dir: { type: 'string' },
      file: { type: 'string' },
      yes: { type: 'boolean' },
      project: { type: 'string' },
      url: { type: 'string' },
      'device-id': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return { help: true as const, command: '', values, positionals };
  const [command, ...rest] = positionals;
  if (!command) throw new UsageError('a command is required');
  const allowed = FLAGS[command];
  if (!allowed) throw new UsageError(`unknown command '${command}'`);
  for (const flag of ['roles', 'queues', 'port', 'dir', 'file', 'yes', 'project', 'url', 'device-id'] as const) {
    if (values[flag] !== undefined && !allowed.includes(flag)) throw new UsageError(`'${command}' takes no --${flag}`);
    if (values[flag] === '') throw new UsageError(`--${flag} needs a value`);
  }
  if (command === 'backup' && values.dir !== undefined && values.file !== undefined)
    throw new UsageError("'backup' takes --dir or --file, not both");
  if (command === 'restore') {
    if (rest.length !== 1 || !rest[0].trim()) throw new UsageError("'restore' needs exactly one backup file");
    if (!values.yes) throw new Refusal("'restore' replaces every row of the database: add --yes to go ahead");
    return { help: false as const, command, values, positionals: rest };
  }
  if (command === 'admin') {
    if (rest[0] !== 'grant' && rest[0] !== 'revoke') throw new UsageError("'admin' needs 'grant' or 'revoke'");
    if (rest.length !== 2 || !rest[1].trim()) throw new UsageError(`'admin ${rest[0]}' needs exactly one email or user id`);
    return { help: false as const, command, values, positionals: rest };
  }
  if (command === 'users') {
    if (rest[0] !== 'set-tier' && rest[0] !== 'set-limits') throw new UsageError("'users' needs 'set-tier' or 'set-limits'");
    if (rest.length !== 3 || !rest[1].trim())
      throw new UsageError(`'users ${rest[0]}' needs a user id and a ${rest[0] === 'set-tier' ? 'tier' : 'JSON object or null'}`);
    if (rest[0] === 'set-tier' && !(TIERS as readonly string[]).includes(rest[2]))
      throw new UsageError(`unknown tier '${rest[2]}' (one of ${TIERS.join(', ')})`);
    return { help: false as const, command, values, positionals: rest };
  }
  if (rest.length) throw new UsageError(`'${command}' takes no arguments (got '${rest.join(' ')}')`);
  if (command === 'device' && !values.project) throw new UsageError("'device' needs --project <dir>");
  return { help: false as const, command, values, positionals: rest };
}

/** A long-running process: the start banner, then drain on SIGTERM/SIGINT and exit 0. */
async function serve(env: NodeJS.ProcessEnv): Promise<void> {
  const config = loadConfig(env);
  const { startSwitchboard } = await import('./app/switchboard');
  const running = await startSwitchboard(config, { progress: (step) => process.stdout.write(`${step}…\n`) });
  const { summary } = running;
  const keys = await probeKeys(config, running.providers);
  const lines = [
    '',
    `Switchboard is running${running.url ? ` at ${running.url}` : ''}`,
    `  roles     ${summary.roles.join(', ')}`,
    ...(config.roles.includes('worker') ? [`  workers   ${config.queues.names.join(', ')}`] : []),
    `  database  ${summary.database}`,
    `  redis     ${summary.redis}`,
    `  llm       ${summary.llm}`,
    ...keys,
    ...(summary.dashboard ? [`  queues    ${summary.dashboard}`] : []),
    '',
  ];
  // Handlers first, banner second: whoever reads the banner may signal at once (a supervisor, a
  // test), and a SIGTERM that arrived before the handler existed would kill the process undrained.
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    running.logger.info({ signal }, 'shutting down');
    await running.stop();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  process.stdout.write(`${lines.join('\n')}\n`);
  // Everything start-up loaded is compiled by now: keep it for the next start (when the launcher
  // enabled Node's compile cache; a no-op otherwise).
  flushCompileCache?.();
}

/**
 * The banner's word on each configured provider's key, asked once (`GET /models`) by the processes
 * that call models: a key the provider refuses is said at start, with what to fix, rather than at
 * the first user's request. Nothing when no provider is configured (the demo model). A process's
 * first fetch loads Node's HTTP client and a host busy starting several processes is slow to
 * answer: the banner waits up to 5 s for a provider, rather than call a live one unreachable.
 */
const BANNER_PROBE_TIMEOUT_MS = 5_000;

async function probeKeys(config: ReturnType<typeof loadConfig>, readiness?: Pick<ProviderProbe, 'states'>): Promise<string[]> {
  const callsModels = config.roles.includes('api') || (config.roles.includes('worker') && callsModelsOn(config.queues.names));
  if (!config.llm.providers.length || !callsModels) return [];
  // An api process asks through the probe `/readyz` reports, so readiness says what the banner said.
  const { ProviderProbe } = await import('./ai/provider-probe');
  const states = await (readiness ?? new ProviderProbe(config.llm.providers)).states(true, BANNER_PROBE_TIMEOUT_MS);
  return config.llm.providers.map(({ name, baseURL }) => {
    const state = states[name];
    const said =
      state === 'reachable'
        ? 'key accepted'
        : state === 'unauthorized'
          ? `KEY REFUSED (401/403 from ${baseURL}): fix OPENAI_API_KEY (or the variable LLM_PROVIDERS names for ${name}); model calls fail llm_auth_failed until then`
          : `not reachable now (GET ${baseURL.replace(/\/+$/, '')}/models failed); model calls fail llm_unavailable while it is down`;
    return `  provider  ${name}: ${said}`;
  });
}

async function migrateCommand(env: NodeJS.ProcessEnv): Promise<number> {
  const config = loadConfig(env);
  const { openDatabase } = await import('./models/database');
  // openDatabase applies pending migrations under the advisory lock, as every process start does.
  const database = await openDatabase({ url: config.database.url, dataDir: config.data.dir, poolSize: 1 });
  await database.close();
  process.stdout.write(`Migrations applied: ${database.description}\n`);
  return 0;
}

async function backupCommand(env: NodeJS.ProcessEnv, values: { dir?: string; file?: string }): Promise<number> {
  const config = loadConfig(env);
  const { backupDatabase, backupFileName, backupKind, pruneBackups } = await import('./models/backup');
  const target = { url: config.database.url, dataDir: config.data.dir };
  const dir = values.file === undefined ? path.resolve(values.dir ?? 'backups') : undefined;
  const file = values.file ?? path.join(dir!, backupFileName(backupKind(target)));
  const written = await backupDatabase(target, file);
  process.stdout.write(`Backup written: ${written.file} (${written.kind}, ${written.bytes} bytes)\n`);
  if (dir) {
    const removed = pruneBackups(dir);
    process.stdout.write(
      `Kept 7 daily, 4 weekly and 12 monthly backups in ${dir}${removed.length ? `; removed ${removed.join(', ')}` : ''}\n`,
    );
  }
  return 0;
}

async function restoreCommand(env: NodeJS.ProcessEnv, file: string): Promise<number> {
  const config = loadConfig(env);
  const [{ restoreDatabase }, { openDatabase }] = await Promise.all([import('./models/backup'), import('./models/database')]);
  const restored = await restoreDatabase({ url: config.database.url, dataDir: config.data.dir }, path.resolve(file));
  // A backup older than this release gets the migrations it predates (under the advisory lock).
  const database = await openDatabase({ url: config.database.url, dataDir: config.data.dir, poolSize: 1 });
  await database.close();
  process.stdout.write(
    [
      `Restored ${file} into ${database.description}.`,
      ...(restored.keptAside ? [`The previous embedded database is kept in ${restored.keptAside}.`] : []),
      'Redis is not part of a backup: start the workers and their reaper ends or resumes runs whose jobs are gone (docs/deploy.md, Backups and restore).',
      '',
    ].join('\n'),
  );
  return 0;
}

async function adminCommand(env: NodeJS.ProcessEnv, action: 'grant' | 'revoke', who: string): Promise<number> {
  const config = loadConfig(env);
  const [{ openDatabase }, { AdminsRepository }, { AdminDirectory }] = await Promise.all([
    import('./models/database'),
    import('./models/admins-repository'),
    import('./auth/admins'),
  ]);
  const database = await openDatabase({ url: config.database.url, dataDir: config.data.dir, poolSize: 1 });
  try {
    const admins = new AdminDirectory(new AdminsRepository(database.db), config.admin.userIds);
    const { user, changed } = action === 'grant' ? await admins.grant(who) : await admins.revoke(who);
    const whom = `${user.email} (id ${user.id}, "${user.name}", registered ${user.createdAt.toISOString()})`;
    if (action === 'grant')
      process.stdout.write(changed ? `Granted admin rights to ${whom}.\n` : `${whom} already is an admin: nothing changed.\n`);
    else process.stdout.write(changed ? `Revoked admin rights of ${whom}.\n` : `${whom} had no granted admin rights: nothing changed.\n`);
    if (action === 'revoke' && admins.namedByEnv(user.id))
      process.stdout.write(`Note: ADMIN_USER_IDS still names ${user.id}; remove it there too.\n`);
    return 0;
  } finally {
    await database.close();
  }
}

/** `users set-tier ID TIER` / `users set-limits ID JSON|null`: an operator's plan change, audited like the admin API's. */
async function usersCommand(env: NodeJS.ProcessEnv, [action, id, value]: string[]): Promise<number> {
  const config = loadConfig(env);
  const [{ openDatabase }, { UsersRepository }, { OPERATOR_ACTOR_ID }, { limitOverridesSchema, resolveLimits }] = await Promise.all([
    import('./models/database'),
    import('./models/users-repository'),
    import('./models/admins-repository'),
    import('./auth/limits'),
  ]);
  let change: { tier: Tier } | { limitOverrides: UserLimitOverrides | null };
  if (action === 'set-tier') change = { tier: value as Tier };
  else {
    let json: unknown;
    try {
      json = JSON.parse(value);
    } catch (error) {
      process.stderr.write(`switchboard: the limits are not JSON (${(error as Error).message})\n`);
      return 2;
    }
    const parsed = limitOverridesSchema.nullable().safeParse(json);
    if (!parsed.success) {
      process.stderr.write(
        `switchboard: bad limits: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'} ${i.message}`).join('; ')}\n`,
      );
      return 2;
    }
    change = { limitOverrides: parsed.data };
  }
  const database = await openDatabase({ url: config.database.url, dataDir: config.data.dir, poolSize: 1 });
  try {
    const user = await new UsersRepository(database.db).changePlan(id.trim(), change, {
      actorId: OPERATOR_ACTOR_ID,
      details: { via: 'cli' },
    });
    if (!user) {
      process.stderr.write(`No user ${id}: the id names no registered account.\n`);
      return 1;
    }
    process.stdout.write(
      `${user.email} (id ${user.id}) is on tier ${user.tier}; limits now ${JSON.stringify(resolveLimits(user, config.tiers))}.\n`,
    );
    return 0;
  } finally {
    await database.close();
  }
}

/** Entry point for bin/switchboard.mjs and src/main.ts: runs the command line and exits when it is done. */
export function main(argv: string[]): void {
  void runCli(argv).then((code) => {
    if (code !== 'running') process.exit(code);
  });
}

/**
 * The embedded database thread's entry: `npm start` runs this bundle, and the thread PGlite runs on
 * loads the same bundle and calls this (models/pglite-thread.ts).
 */
export async function servePgliteThread(): Promise<void> {
  const { servePgliteThread: serve } = await import('./models/pglite-thread');
  await serve();
}
