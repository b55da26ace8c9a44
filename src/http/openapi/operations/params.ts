/** Moved to `src/http/routes/params.ts` (route declarations); re-exported for the operation lists not yet converted. */
export * from '../../routes/params';
