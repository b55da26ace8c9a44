import type { ChatRequest, ChatTurn } from '../../src/demo-model/openai-compatible-server';
import { answerChunks, frame, reportedUsage, REASONING_TEXT, type Wire, type WireShape } from './provider-wire';

/*
 * One profile per provider a deployment may name: the shape its OpenAI-compatible stream has, what
 * it refuses, and the failure it is known for. Every profile says where its shape comes from (the
 * provider's documentation, or a public issue quoting its wire output).
 */

/**
 * What a path must end with when a profile's failure scenario plays. A provider's refusal reaches
 * users as the fixed text of its code, never as the provider's own message (which can name the
 * operator's account or organisation); the server log keeps the provider's message.
 */
export interface ExpectedFailure {
  /** The error code every path reports. */
  code: string;
  /** The reason, as the message (or the notes' `[ERROR]` line, or an agent run's error) states it. */
  reason: RegExp;
}

export interface ReplayProfile {
  /** The provider's name in `LLM_PROVIDERS` and its base path on the replay server. */
  name: string;
  model: string;
  kind?: 'openai' | 'ollama' | 'vllm' | 'lmstudio';
  /** Whether it reports usage (else every usage line is an estimate). */
  sendsUsage: boolean;
  /**
   * Set when the profile teaches the app something it keeps for its endpoint (a refused field it
   * stops sending there): the replay matrix then gives it an app of its own, so no other profile is
   * sent what this one taught.
   */
  ownEndpoint?: true;
  /** Where the shape comes from. */
  sources: string[];
  /** The failure scenario (a request whose last user message holds FAIL_MARK), if the profile has one. */
  failure?: ExpectedFailure;
  /** A refusal before answering (HTTP status and body), e.g. a field the provider rejects. */
  refuse?(body: ChatRequest): Refusal | undefined;
  answer(turn: ChatTurn, body: ChatRequest): Wire;
  /** The failure scenario: a wire that fails after HTTP 200, or a refusal (with `failure`, what every path must then report). */
  fail?(body: ChatRequest): Wire | Refusal;
}

/** An HTTP error answer: its status and JSON body, as the provider sends it. */
export interface Refusal {
  status: number;
  body: unknown;
}

/** Whether a failure scenario answers with an error status rather than a stream. */
export const isRefusal = (answer: Wire | Refusal): answer is Refusal => 'status' in answer;

/** A failure scenario that refuses every request with `status` and `body`, whatever it asks. */
const refusing = (status: number, body: unknown) => (): Refusal => ({ status, body });

const USAGE = reportedUsage();
const SIGNATURE = 'CiQBjz1rX2replay-thought-signature==';

/** A profile whose wire is `shape` (and, when it has one, its failure scenario's). */
function profile(
  fields: Omit<ReplayProfile, 'answer' | 'fail'> & { fail?: (body: ChatRequest, shape: WireShape) => Wire | Refusal },
  shape: WireShape,
): ReplayProfile {
  const { fail, ...rest } = fields;
  return {
    ...rest,
    answer: (turn, body) => frame(answerChunks(turn, body, shape, USAGE), shape),
    ...(fail ? { fail: (body: ChatRequest) => fail(body, shape) } : {}),
  };
}

/** A partial answer, then the given finish reason, then (when the shape reports usage) usage. */
const stoppedEarly =
  (finish: 'length' | 'content_filter', choiceExtra?: Record<string, unknown>) => (body: ChatRequest, shape: WireShape) => {
    const base = { id: 'chatcmpl-stopped', object: 'chat.completion.chunk', created: 1_700_000_000, model: body.model };
    const choice = (delta: Record<string, unknown>, reason: string | null = null, extra = shape.choiceExtra) => ({
      ...base,
      choices: [{ index: 0, delta, finish_reason: reason, ...extra }],
    });
    return frame(
      [
        ...(shape.prelude ?? []),
        choice({ role: 'assistant', content: '' }),
        choice({ content: 'The first part of an answer that ' }),
        choice({}, finish, { ...shape.choiceExtra, ...choiceExtra }),
        { ...base, choices: [], usage: USAGE },
      ],
      shape,
    );
  };

/** Refuses a tool loop's follow-up whose assistant tool-call turn lacks what `carried` checks. */
const followUpNeeds =
  (carried: (assistant: Record<string, any>) => boolean, refusal: unknown) =>
  (body: ChatRequest): Refusal | undefined => {
    const assistants = body.messages.filter((message) => message.role === 'assistant' && message.tool_calls?.length);
    return assistants.every((assistant) => carried(assistant as Record<string, any>)) ? undefined : { status: 400, body: refusal };
  };

const azureFilter = (filtered: boolean) => ({
  content_filter_results: {
    hate: { filtered: false, severity: 'safe' },
    self_harm: { filtered: false, severity: 'safe' },
    sexual: { filtered: false, severity: 'safe' },
    violence: { filtered, severity: filtered ? 'high' : 'safe' },
  },
});

/**
 * Mistral refuses a request field it does not know (`stream_options`) with 422 and this body
 * (quoted in cline/cline#582 and dnakov/anon-kode#53).
 */
export const MISTRAL_STREAM_OPTIONS_REFUSAL = {
  status: 422,
  body: {
    object: 'error',
    message: {
      detail: [
        { type: 'extra_forbidden', loc: ['body', 'stream_options'], msg: 'Extra inputs are not permitted', input: { include_usage: true } },
      ],
    },
    type: 'invalid_request_error',
    param: null,
    code: null,
  },
};

export const PROFILES: ReplayProfile[] = [
  profile(
    {
      name: 'openai',
      model: 'gpt-4o-mini',
      sendsUsage: true,
      // A conversation past the model's context window (OpenAI's error codes guide; litellm matches its message).
      failure: { code: 'llm_unavailable', reason: /could not be reached/ },
      fail: refusing(400, {
        error: {
          message:
            "This model's maximum context length is 128000 tokens. However, your messages resulted in 130542 tokens. Please reduce the length of the messages.",
          type: 'invalid_request_error',
          param: 'messages',
          code: 'context_length_exceeded',
        },
      }),
      sources: [
        'https://platform.openai.com/docs/guides/error-codes (400 context_length_exceeded), BerriAI/litellm#584 (its message matched as "This model\'s maximum context length is")',
        'https://platform.openai.com/docs/api-reference/chat/create (stream_options.include_usage: a last chunk with empty choices)',
        'https://platform.openai.com/docs/api-reference/chat-streaming (tool_calls deltas: index and id first, then argument pieces)',
      ],
    },
    { toolCalls: 'streamed', usage: 'include-usage' },
  ),
  profile(
    {
      name: 'azure',
      model: 'gpt-4o',
      sendsUsage: true,
      // The content filter withholds the rest of an answer: finish_reason content_filter, the category filtered.
      failure: { code: 'llm_content_filter', reason: /content_filter|content filter/ },
      fail: stoppedEarly('content_filter', azureFilter(true)),
      sources: [
        'https://learn.microsoft.com/en-us/azure/ai-services/openai/concepts/content-filter (prompt_filter_results, content_filter_results on each choice, finish_reason content_filter)',
        'Azure/azure-sdk-for-go#21086, AbanteAI/archive-old-cli-mentat#429 (a first chunk with empty choices carrying prompt_filter_results)',
        'rksm/org-ai#90 (content_filter_results beside every delta)',
      ],
    },
    {
      toolCalls: 'streamed',
      usage: 'include-usage',
      prelude: [
        {
          id: '',
          object: '',
          created: 0,
          model: '',
          choices: [],
          prompt_filter_results: [{ prompt_index: 0, ...azureFilter(false) }],
        },
      ],
      choiceExtra: azureFilter(false),
    },
  ),
  profile(
    {
      name: 'anthropic',
      model: 'claude-sonnet-4-5',
      sendsUsage: true,
      // Claude's max_tokens stop comes back through the compatibility layer as finish_reason length.
      failure: { code: 'llm_output_truncated', reason: /length|output limit/ },
      fail: stoppedEarly('length'),
      sources: [
        'https://docs.anthropic.com/en/api/openai-sdk (stream and stream_options fully supported; choices always of length 1; finish_reason supported)',
      ],
    },
    { toolCalls: 'streamed', usage: 'include-usage' },
  ),
  profile(
    {
      name: 'gemini',
      model: 'gemini-3-pro-preview',
      sendsUsage: true,
      // The follow-up of a tool loop must carry the first call's signature back, else 400.
      refuse: followUpNeeds(
        (assistant) => assistant.tool_calls[0]?.extra_content?.google?.thought_signature === SIGNATURE,
        [
          {
            error: {
              code: 400,
              message: 'Function call is missing a thought_signature in functionCall parts.',
              status: 'INVALID_ARGUMENT',
            },
          },
        ],
      ),
      // A key the API does not accept: a 400 whose body is a JSON array, outside OpenAI's envelope.
      failure: { code: 'llm_unavailable', reason: /could not be reached/ },
      fail: refusing(400, [
        { error: { code: 400, message: 'API key not valid. Please pass a valid API key.', status: 'INVALID_ARGUMENT' } },
      ]),
      sources: [
        'https://ai.google.dev/gemini-api/docs/troubleshooting (400 INVALID_ARGUMENT for an invalid API key; errors as a JSON array on the compatibility endpoint, as the thought-signature refusal above)',
        'https://ai.google.dev/gemini-api/docs/thought-signatures ("OpenAI compatibility": extra_content.google.thought_signature on the first call, to be sent back)',
        'su-kaka/gcli2api#406, NousResearch/hermes-agent#57939 (parallel calls each with index 0, each with its own id)',
        'https://ai.google.dev/gemini-api/docs/openai (usage reported on the streamed answer)',
      ],
    },
    { toolCalls: 'index-zero', signature: SIGNATURE, usage: 'on-finish' },
  ),
  profile(
    {
      name: 'ollama',
      model: 'llama3.1:8b',
      kind: 'ollama',
      sendsUsage: false,
      // A model not pulled on this server: 404 with OpenAI's envelope.
      failure: { code: 'llm_unavailable', reason: /could not be reached/ },
      fail: refusing(404, {
        error: { message: 'model "llama3.1:8b" not found, try pulling it first', type: 'api_error', param: null, code: null },
      }),
      sources: [
        'netease-youdao/QAnything#555, FlowiseAI/Flowise#2335 (404 model "…" not found, try pulling it first, in OpenAI\'s envelope)',
        'ollama/ollama#7881 (tool calls sent whole, one chunk each)',
        'ollama/ollama#4448, ollama/ollama#5200 (no usage in a streamed answer before stream_options support)',
      ],
    },
    { toolCalls: 'whole', usage: 'never', textPiece: 4 },
  ),
  profile(
    {
      name: 'vllm',
      model: 'Qwen/Qwen3-8B',
      kind: 'vllm',
      sendsUsage: true,
      // A prompt past --max-model-len: vLLM's ErrorResponse, at the top level rather than in an `error` envelope.
      failure: { code: 'llm_unavailable', reason: /could not be reached/ },
      fail: refusing(400, {
        object: 'error',
        message:
          "This model's maximum context length is 8192 tokens. However, you requested 9000 tokens in the messages. Please reduce the length of the messages.",
        type: 'BadRequestError',
        param: null,
        code: 400,
      }),
      sources: [
        'vllm-project/vllm vllm/entrypoints/openai/protocol.py ErrorResponse (object error, message, type, param, code), the maximum context length message of its serving layer',
        'https://docs.vllm.ai/en/v0.10.0/features/reasoning_outputs.html (reasoning_content streamed beside content)',
        'block/goose#8031 (vLLM error objects in a stream)',
        'https://docs.vllm.ai/en/latest/serving/openai_compatible_server.html (stream_options.include_usage)',
      ],
    },
    { toolCalls: 'streamed', reasoning: 'reasoning_content', usage: 'include-usage' },
  ),
  profile(
    {
      name: 'lmstudio',
      model: 'qwen/qwen3-8b',
      kind: 'lmstudio',
      sendsUsage: true,
      // No model loaded on the server (just-in-time loading off): 404.
      failure: { code: 'llm_unavailable', reason: /could not be reached/ },
      fail: refusing(404, {
        error: {
          message: "No models loaded. Please load a model in the developer page or use the 'lms load' command.",
          type: 'invalid_request_error',
          param: 'model',
          code: null,
        },
      }),
      sources: [
        'lmstudio-ai/lms#107 (404 No models loaded), lmstudio-ai/lmstudio-bug-tracker#1730 (the body: invalid_request_error, param model)',
        "lmstudio-ai/lmstudio-bug-tracker#1868 (a call's arguments whole in one chunk)",
        '0xPlaygrounds/rig#442 (argument chunks carry function.name "")',
        'https://html.spec.whatwg.org/multipage/server-sent-events.html#parsing-an-event-stream (lines may end in CRLF; exercised on this profile, not reported of LM Studio)',
      ],
    },
    { toolCalls: 'empty-name-then-whole', usage: 'include-usage', eol: '\r\n' },
  ),
  profile(
    {
      name: 'llamacpp',
      model: 'gemma-3-4b-it',
      sendsUsage: true,
      // A prompt past the server's --ctx-size: 400 exceed_context_size_error with the token counts.
      failure: { code: 'llm_unavailable', reason: /could not be reached/ },
      fail: refusing(400, {
        error: {
          code: 400,
          message: 'the request exceeds the available context size. try increasing the context size or enable context shift',
          type: 'exceed_context_size_error',
          n_prompt_tokens: 14429,
          n_ctx: 8192,
        },
      }),
      sources: [
        'oobabooga/textgen#7257, ggml-org/llama.cpp#17284, ggml-org/llama.cpp#15780 (400 exceed_context_size_error with n_prompt_tokens and n_ctx)',
        'ggml-org/llama.cpp#28926 (UTF-8 characters split across stream pieces)',
        'openai-php/client#780 (timings on every chunk)',
        'strands-agents/harness-sdk#3955 (usage in a chunk after the finish chunk, then [DONE])',
      ],
    },
    { toolCalls: 'streamed', usage: 'after-finish', splitUtf8: true, chunkExtra: { timings: { prompt_n: 10, predicted_n: 20 } } },
  ),
  profile(
    {
      name: 'groq',
      model: 'llama-3.3-70b-versatile',
      sendsUsage: true,
      // A request larger than the plan's tokens per minute: 413, which no retry can mend.
      failure: { code: 'llm_unavailable', reason: /could not be reached/ },
      fail: refusing(413, {
        error: {
          message:
            'Request too large for model `llama-3.3-70b-versatile` in organization `org_replay` service tier `on_demand` on tokens per minute (TPM): Limit 6000, Requested 14368, please reduce your message size and try again.',
          type: 'tokens',
          code: 'rate_limit_exceeded',
        },
      }),
      sources: [
        'assafelovic/gpt-researcher#985, cottongeeks/podscript#20 (413 Request too large ... tokens per minute, type tokens, code rate_limit_exceeded)',
        'https://console.groq.com/docs/api-reference (x_groq.usage on the last chunk)',
        'Portkey-AI/gateway#1072 (the last chunks quoted)',
      ],
    },
    { toolCalls: 'streamed', usage: 'x_groq' },
  ),
  profile(
    {
      name: 'deepseek',
      model: 'deepseek-reasoner',
      sendsUsage: true,
      // In thinking mode a tool loop's follow-up must carry the turn's reasoning_content, else 400.
      refuse: followUpNeeds((assistant) => assistant.reasoning_content === REASONING_TEXT.join(''), {
        error: {
          message: 'Missing `reasoning_content` field in the assistant message at message index 2.',
          type: 'invalid_request_error',
          param: null,
          code: 'invalid_request_error',
        },
      }),
      // An account without credit: 402, which no retry can mend.
      failure: { code: 'llm_unavailable', reason: /could not be reached/ },
      fail: refusing(402, {
        error: { message: 'Insufficient Balance', type: 'unknown_error', param: null, code: 'invalid_request_error' },
      }),
      sources: [
        'https://api-docs.deepseek.com/quick_start/error_codes (402 Insufficient Balance), continuedev/continue#9942 (as clients report it)',
        'https://api-docs.deepseek.com/guides/thinking_mode#tool-calls (reasoning_content, sent back in a tool loop)',
        'https://api-docs.deepseek.com/quick_start/rate_limit (": keep-alive" comments while a request waits)',
      ],
    },
    { toolCalls: 'streamed', reasoning: 'reasoning_content', usage: 'include-usage', comments: ['keep-alive'], blankLines: true },
  ),
  profile(
    {
      name: 'mistral',
      model: 'magistral-medium-latest',
      sendsUsage: true,
      refuse: (body) => (body.stream_options ? MISTRAL_STREAM_OPTIONS_REFUSAL : undefined),
      // The app stops sending stream_options to an endpoint that refused it.
      ownEndpoint: true,
      // A key not accepted: 401 with Mistral's own body, outside OpenAI's envelope. Said as such: an operator must fix the key.
      failure: { code: 'llm_auth_failed', reason: /API key/ },
      fail: refusing(401, { message: 'Unauthorized', request_id: 'c61f2f15feca71626a990e3740f99245' }),
      sources: [
        'cline/cline#1734 (401 {"message":"Unauthorized","request_id":...}), continuedev/continue#10277 (the SDK showing it as "401 status code (no body)")',
        'cline/cline#582, dnakov/anon-kode#53 (422 extra_forbidden on stream_options)',
        'BerriAI/litellm#16272, vercel/ai#8072 (Magistral content as thinking and text parts)',
        'https://docs.mistral.ai/capabilities/function_calling/ (every call whole with its own id, no index)',
      ],
    },
    { toolCalls: 'whole-no-index', reasoning: 'thinking-parts', textParts: true, usage: 'on-finish' },
  ),
  profile(
    {
      name: 'openrouter',
      model: 'openai/gpt-4o-mini',
      sendsUsage: true,
      // The upstream fails after the 200: an error object in the stream, finish_reason error.
      failure: { code: 'llm_unavailable', reason: /could not be reached/ },
      fail: (body, shape) =>
        frame(
          [
            {
              id: 'gen-1',
              object: 'chat.completion.chunk',
              created: 1_700_000_000,
              model: body.model,
              choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }],
            },
            {
              id: 'gen-1',
              object: 'chat.completion.chunk',
              created: 1_700_000_000,
              model: body.model,
              provider: 'OpenAI',
              error: { code: 502, message: 'Provider returned error: upstream overloaded' },
              choices: [{ index: 0, delta: { content: '' }, finish_reason: 'error' }],
            },
          ],
          shape,
        ),
      sources: [
        'https://openrouter.ai/docs/api-reference/streaming (": OPENROUTER PROCESSING" comments; errors mid-generation as data events with an error field after HTTP 200)',
        'docker/docker-agent#2349 (the comment lines as sent)',
        'https://openrouter.ai/docs/api/errors (mid-stream errors; usage in the final chunk)',
      ],
    },
    { toolCalls: 'streamed', usage: 'after-finish', comments: ['OPENROUTER PROCESSING'] },
  ),
];

export const profileNamed = (name: string): ReplayProfile => {
  const found = PROFILES.find((candidate) => candidate.name === name);
  if (!found) throw new Error(`no replay profile ${name}`);
  return found;
};
