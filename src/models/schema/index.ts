/**
 * The drizzle mirror of migrations/*.sql, one file per concern: the SQL files are the source of
 * truth for DDL; these give queries their types. Keep both in step.
 */
export * from './accounts';
export * from './ledgers';
export * from './canvases';
export * from './chat';
export * from './agents';
export * from './flows';
export * from './runs';
export * from './webhooks';
export * from './mcp';
export * from './evals';
