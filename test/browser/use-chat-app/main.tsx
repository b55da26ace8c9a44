import { useChat } from '@ai-sdk/react';
import { DefaultChatTransport, lastAssistantMessageIsCompleteWithApprovalResponses, type UIMessage } from 'ai';
import { useState } from 'react';
import { createRoot } from 'react-dom/client';

/**
 * The smallest React app on `useChat` against Switchboard's assistant chat, as its docs show it
 * (docs/ai-sdk.md): the token, chat id and tool mode come from the page's query.
 */
const params = new URLSearchParams(location.search);
const transport = new DefaultChatTransport({
  api: '/api/v1/chat/stream',
  headers: { authorization: `Bearer ${params.get('token') ?? ''}`, 'x-vercel-ai-ui-message-stream': 'v1' },
  body: params.get('tools') === 'device' ? { tools: 'device' } : {},
});

type ToolPart = { type: string; state: string; approval?: { id: string } };

function Part({ part, answer }: { part: UIMessage['parts'][number]; answer: (id: string, approved: boolean) => void }) {
  if (part.type === 'text') return <span data-testid="text">{part.text}</span>;
  if (!part.type.startsWith('tool-')) return null;
  const tool = part as unknown as ToolPart;
  return (
    <div data-testid="tool" data-state={tool.state}>
      {tool.type}
      {tool.state === 'approval-requested' && tool.approval ? (
        <>
          <button data-testid="approve" onClick={() => answer(tool.approval!.id, true)}>
            Approve
          </button>
          <button data-testid="reject" onClick={() => answer(tool.approval!.id, false)}>
            Reject
          </button>
        </>
      ) : null}
    </div>
  );
}

function App() {
  const { messages, sendMessage, addToolApprovalResponse, status, error } = useChat({
    id: params.get('chat') ?? 'chat',
    resume: true,
    transport,
    sendAutomaticallyWhen: lastAssistantMessageIsCompleteWithApprovalResponses,
  });
  const [text, setText] = useState('');
  const answer = (id: string, approved: boolean) => void addToolApprovalResponse({ id, approved });
  return (
    <main>
      <p data-testid="status">{status}</p>
      {error ? <p data-testid="error">{error.message}</p> : null}
      {messages.map((message) => (
        <div key={message.id} data-testid={`message-${message.role}`}>
          {message.parts.map((part, index) => (
            <Part key={index} part={part} answer={answer} />
          ))}
        </div>
      ))}
      <form
        onSubmit={(event) => {
          event.preventDefault();
          void sendMessage({ text });
          setText('');
        }}
      >
        <input data-testid="input" value={text} onChange={(event) => setText(event.target.value)} />
        <button type="submit" data-testid="send">
          Send
        </button>
      </form>
    </main>
  );
}

createRoot(document.getElementById('root')!).render(<App />);
