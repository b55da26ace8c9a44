import { connectCanvas, type CanvasConnection, type SwitchboardClient } from '@switchboard/client';
import { createContext, createElement, useContext, useEffect, useMemo, type ReactNode } from 'react';

export interface SwitchboardContextValue {
  client: SwitchboardClient;
  /** The one `/canvas` socket of the provider, connected on first use (authenticated with `client.freshAccessToken()`). */
  canvasSocket: () => Promise<CanvasConnection>;
}

const SwitchboardContext = createContext<SwitchboardContextValue | null>(null);

export interface SwitchboardProviderProps {
  /** A signed-in client (`createSwitchboardClient`, then `auth.login`). */
  client: SwitchboardClient;
  children?: ReactNode;
}

/**
 * Gives the hooks below it a client and one shared `/canvas` socket (every `useCanvas` and
 * `useApprovals` of the tree rides on it). The socket closes when the provider unmounts or gets
 * another client.
 */
export function SwitchboardProvider({ client, children }: SwitchboardProviderProps) {
  const value = useMemo(() => {
    let socket: Promise<CanvasConnection> | undefined;
    const canvasSocket = () => {
      socket ??= connectCanvas({ url: client.serverUrl, token: () => client.freshAccessToken() }).catch((error: unknown) => {
        socket = undefined; // the next hook that asks tries again
        throw error;
      });
      return socket;
    };
    // Closes the socket; a hook mounting again (React's StrictMode remounts) connects a new one.
    const close = () => {
      const closing = socket;
      socket = undefined;
      // eslint-disable-next-line no-restricted-syntax -- a socket that never opened has nothing to close
      void closing?.then((connection) => connection.close()).catch(() => undefined);
    };
    return { client, canvasSocket, close };
  }, [client]);
  useEffect(() => value.close, [value]);
  return createElement(SwitchboardContext.Provider, { value }, children);
}

/** The provider's client and socket; throws outside a `SwitchboardProvider`. */
export function useSwitchboard(): SwitchboardContextValue {
  const value = useContext(SwitchboardContext);
  if (!value) throw new Error('Switchboard hooks need a <SwitchboardProvider client={…}> above them');
  return value;
}
