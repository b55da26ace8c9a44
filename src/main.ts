import { main } from './cli';

/**
 * `npm start [-- --roles=api,worker --queues=generation,broadcast --port=N]`: the same as
 * `switchboard start`. Flags override SWITCHBOARD_ROLES / WORKER_QUEUES / PORT; everything else
 * comes from the environment. Unknown flags are refused (exit 2) rather than ignored.
 */
main(['start', ...process.argv.slice(2)]);
