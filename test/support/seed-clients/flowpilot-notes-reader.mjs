/**
 * The FlowPilot console's ticket-notes reader, its `streamDocumentation` copied unchanged from the
 * client's `aiSessions.ts`, run in a process of its own: what a browser gives it (`localStorage`,
 * Vite's `import.meta.env`) is set up first from the environment.
 *
 * Environment: VITE_API_URL (the server's origin), ACCESS_TOKEN, SESSION_ID.
 * Prints one JSON line: `{chunks, done, error}`.
 */
globalThis.localStorage = { getItem: (key) => (key === 'access_token' ? process.env.ACCESS_TOKEN : null) };
import.meta.env = { VITE_API_URL: process.env.VITE_API_URL };
// Says on stderr when the response has begun, so a test can let the notes be written only then.
const browserFetch = globalThis.fetch;
globalThis.fetch = async (...args) => {
  const response = await browserFetch(...args);
  process.stderr.write('response started\n');
  return response;
};

const aiSessionsApi = {
  // ---- copied unchanged from the client ----
  async streamDocumentation(
    sessionId,
    onChunk,
    onDone,
    onError,
  ) {
    const token = localStorage.getItem('access_token')
    const baseUrl = import.meta.env.VITE_API_URL || ''

    try {
      const response = await fetch(
        `${baseUrl}/api/ai-sessions/${sessionId}/documentation/stream`,
        {
          headers: {
            Authorization: `Bearer ${token}`,
          },
        },
      )

      if (!response.ok) {
        onError(`HTTP ${response.status}`)
        return
      }

      const reader = response.body?.getReader()
      if (!reader) {
        onError('No response body')
        return
      }

      const decoder = new TextDecoder()
      let buffer = ''

      while (true) {
        const { done, value } = await reader.read()
        if (done) break

        buffer += decoder.decode(value, { stream: true })
        const lines = buffer.split('\n')
        buffer = lines.pop() || ''

        for (const line of lines) {
          if (line.startsWith('data: ')) {
            const data = line.slice(6)
            if (data === '[DONE]') {
              onDone()
              return
            }
            if (data.startsWith('[ERROR]')) {
              onError(data.slice(8))
              return
            }
            onChunk(data)
          }
        }
      }
      // Stream ended without [DONE]
      onDone()
    } catch (err) {
      onError(err instanceof Error ? err.message : 'Stream failed')
    }
  },
  // ---- end of the copy ----
};

// The console's ConcludeSessionModal: `summaryRef.current += chunk` for each chunk.
const result = { chunks: [], done: false, error: null };
await aiSessionsApi.streamDocumentation(
  process.env.SESSION_ID,
  (chunk) => result.chunks.push(chunk),
  () => (result.done = true),
  (error) => (result.error = error),
);
process.stdout.write(`${JSON.stringify(result)}\n`);
