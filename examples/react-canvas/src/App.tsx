import { createSwitchboardClient, type Block, type SwitchboardClient } from '@switchboard/client';
import { SwitchboardProvider, useCanvas, useGeneration } from '@switchboard/react';
import { useEffect, useState, type FormEvent } from 'react';

/** The canvas id is the URL's hash: `http://localhost:5173/#<canvasId>`. */
function useHash(): string {
  const [hash, setHash] = useState(() => location.hash.slice(1));
  useEffect(() => {
    const onChange = () => setHash(location.hash.slice(1));
    addEventListener('hashchange', onChange);
    return () => removeEventListener('hashchange', onChange);
  }, []);
  return hash;
}

function SignIn({ onSignedIn }: { onSignedIn: (client: SwitchboardClient) => void }) {
  const [error, setError] = useState('');
  const submit = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const client = createSwitchboardClient({ baseUrl: location.origin });
    try {
      // text inputs: FormData gives strings for them
      await client.auth.login({ email: form.get('email') as string, password: form.get('password') as string });
      onSignedIn(client);
    } catch (caught) {
      setError(caught instanceof Error ? caught.message : String(caught));
    }
  };
  return (
    <form className="signin" onSubmit={(event) => void submit(event)}>
      <input name="email" type="email" placeholder="Email" required data-testid="email" />
      <input name="password" type="password" autoComplete="current-password" placeholder="Password" required data-testid="password" />
      <button data-testid="sign-in">Sign in</button>
      {error && <p className="error">{error}</p>}
    </form>
  );
}

const text = (block: Block) => {
  const content = block.content as { text?: string; items?: string[]; code?: string };
  return content.text ?? content.items?.join(' · ') ?? content.code ?? block.type;
};

function Canvas({ canvasId }: { canvasId: string }) {
  const canvas = useCanvas(canvasId);
  const generation = useGeneration();
  const [prompt, setPrompt] = useState('');
  const busy = generation.status === 'starting' || generation.status === 'running' || generation.status === 'stopping';
  const { generation: room } = canvas;

  return (
    <main>
      <header>
        <span className="status" data-testid="status" data-state={canvas.status}>
          {canvas.status}
          {canvas.error ? `: ${canvas.error}` : ''}
        </span>
        <ul className="presence">
          {canvas.presence.map((user) => (
            <li key={user.userId} data-testid="presence-user" data-user-id={user.userId}>
              {user.name}
            </li>
          ))}
        </ul>
      </header>
      <form
        className="generate"
        onSubmit={(event) => {
          event.preventDefault();
          void generation.start(canvasId, prompt);
        }}
      >
        <input
          value={prompt}
          onChange={(event) => setPrompt(event.target.value)}
          placeholder="Ask for blocks…"
          required
          data-testid="prompt"
        />
        <button disabled={busy} data-testid="generate">
          Generate
        </button>
        <button type="button" disabled={!busy} onClick={() => void generation.stop()} data-testid="stop">
          Stop
        </button>
        <button type="button" disabled={busy || !generation.undoable} onClick={() => void generation.undo()} data-testid="undo">
          Undo
        </button>
      </form>
      <p className="generation" data-testid="generation-status" data-status={generation.status}>
        {generation.status}
        {generation.stage ? ` · ${generation.stage}` : ''} · {generation.streamed} streamed
        {generation.error ? ` · ${generation.error}` : ''}
      </p>
      {room && room.stage === 'broadcasting' && room.chunkCount ? (
        <progress data-testid="room-progress" max={room.chunkCount} value={(room.chunkIndex ?? 0) + 1} />
      ) : null}
      <ol className="blocks" data-testid="blocks">
        {canvas.blocks.map((block) => (
          <li key={block.id} data-testid="block" data-block-type={block.type} data-rank={block.rank}>
            {text(block)}
          </li>
        ))}
      </ol>
      {generation.drafts.length > 0 && (
        <ol className="drafts" data-testid="drafts">
          {generation.drafts.map((draft, index) => (
            <li key={index}>{'text' in draft.content ? draft.content.text : draft.type}</li>
          ))}
        </ol>
      )}
    </main>
  );
}

export function App() {
  const [client, setClient] = useState<SwitchboardClient | null>(null);
  const canvasId = useHash();
  if (!client) return <SignIn onSignedIn={setClient} />;
  if (!canvasId) return <p>Open a canvas: add its id to the address, after `#`.</p>;
  return (
    <SwitchboardProvider client={client}>
      <Canvas canvasId={canvasId} />
    </SwitchboardProvider>
  );
}
