/**
 * The `/device` wire protocol lives in the client package (packages/client/src/protocol.ts): the
 * server validates with the same zod schemas the SDK's device helper does.
 */
export * from '@switchboard/client/protocol';
