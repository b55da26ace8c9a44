import type * as LangChainOpenAI from '@langchain/openai';
import type * as OpenAISdk from 'openai';

let loaded: typeof LangChainOpenAI | undefined;
let sdk: typeof OpenAISdk | undefined;

/**
 * @langchain/openai, loaded on the first model or embedding call rather than at start-up: with the
 * OpenAI SDK under it, it is the largest package a worker loads (about half a second of a warm
 * `npm start`), and a process may run for a long time before its first model call.
 */
export function langchainOpenAI(): typeof LangChainOpenAI {
  // A synchronous require on purpose: callers are synchronous, and an import() would make them async.
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded lazily, see above
  loaded ??= require('@langchain/openai') as typeof LangChainOpenAI;
  return loaded;
}

/** The `openai` SDK (the one @langchain/openai runs on), loaded lazily for the same reason. */
export function openaiSdk(): typeof OpenAISdk {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded lazily, see above
  sdk ??= require('openai') as typeof OpenAISdk;
  return sdk;
}
