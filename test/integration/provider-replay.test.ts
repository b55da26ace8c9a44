import { profileNamed } from '../support/provider-profiles';
import { describeReplayMatrix } from '../support/replay-matrix';

/*
 * The replay matrix (test/support/replay-matrix.ts) for the hosted APIs: OpenAI, Azure OpenAI,
 * Anthropic's and Gemini's OpenAI-compatible endpoints, Groq, Mistral. The open-weight servers and
 * routers are in provider-replay-open-models.test.ts (two files: jest runs them side by side).
 */
describeReplayMatrix(['openai', 'azure', 'anthropic', 'gemini', 'groq', 'mistral'].map(profileNamed));
