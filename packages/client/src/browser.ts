/**
 * The browser build's entry: the SDK as `index.ts` exports it, with zod's compiler turned off first
 * (`zod-jitless` is imported before any module that builds a schema, so it runs before them).
 */
import './zod-jitless';

export * from './index';
