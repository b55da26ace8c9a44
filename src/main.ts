import { ConfigError, loadConfig } from '../config';
import { RedisUnavailableError } from './app/embedded-redis';
import { startSwitchboard } from './app/switchboard';

/**
 * `npm start [-- --roles=api,worker --queues=generation,broadcast]`: CLI flags override
 * SWITCHBOARD_ROLES / WORKER_QUEUES; everything else comes from the environment.
 */
function envWithFlags(argv: string[]): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const arg of argv) {
    const [flag, value] = arg.split('=', 2);
    if (flag === '--roles' && value) env.SWITCHBOARD_ROLES = value;
    else if (flag === '--queues' && value) env.WORKER_QUEUES = value;
    else if (flag === '--port' && value) env.PORT = value;
  }
  return env;
}

async function main() {
  const config = loadConfig(envWithFlags(process.argv.slice(2)));
  const running = await startSwitchboard(config);
  const { summary } = running;
  const lines = [
    '',
    `Switchboard is running${running.url ? ` at ${running.url}` : ''}`,
    `  roles     ${summary.roles.join(', ')}`,
    `  database  ${summary.database}`,
    `  redis     ${summary.redis}`,
    `  llm       ${summary.llm}`,
    ...(summary.dashboard ? [`  queues    ${summary.dashboard}`] : []),
    '',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);

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
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError || error instanceof RedisUnavailableError) {
    process.stderr.write(`\n${error.message}\n\n`);
  } else {
    process.stderr.write(`\nSwitchboard failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  }
  process.exit(1);
});
