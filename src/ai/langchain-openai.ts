import type * as LangChainOpenAI from '@langchain/openai';

let loaded: typeof LangChainOpenAI | undefined;

/**
 * @langchain/openai, loaded on the first model or embedding call rather than at start-up: with the
 * OpenAI SDK under it, it is the largest package a worker loads (about half a second of a warm
 * `npm start`), and a process may run for a long time before its first model call.
 */
export function langchainOpenAI(): typeof LangChainOpenAI {
  loaded ??= require('@langchain/openai') as typeof LangChainOpenAI;
  return loaded;
}
