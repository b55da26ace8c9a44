import { profileNamed } from '../support/provider-profiles';
import { describeReplayMatrix } from '../support/replay-matrix';

/*
 * The replay matrix (test/support/replay-matrix.ts) for open-weight model servers and routers:
 * Ollama, vLLM, LM Studio, the llama.cpp server, DeepSeek, OpenRouter. The hosted APIs are in
 * provider-replay.test.ts.
 */
describeReplayMatrix(['ollama', 'vllm', 'lmstudio', 'llamacpp', 'deepseek', 'openrouter'].map(profileNamed));
