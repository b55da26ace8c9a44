import type { Approval, ApprovalRequested } from '@switchboard/client';
import { useCallback, useEffect, useState } from 'react';
import { useSwitchboard } from './context';

/** A request waiting on the user's decision. */
export type PendingApproval = Pick<ApprovalRequested, 'approvalId' | 'sessionId' | 'toolName' | 'parameters' | 'reason' | 'expiresAt'>;

export interface ApprovalsState {
  /** Oldest first. */
  pending: PendingApproval[];
  approve(approvalId: string): Promise<Approval>;
  reject(approvalId: string): Promise<Approval>;
  error?: string;
}

const fromView = (approval: Approval): PendingApproval => ({
  approvalId: approval.id,
  sessionId: approval.sessionId,
  toolName: approval.toolName,
  parameters: approval.parameters,
  reason: approval.reason,
  expiresAt: approval.expiresAt,
});

/**
 * The signed-in user's pending approvals: loaded once, then kept from the socket's
 * `approval_requested` / `approval_resolved` (a decision made anywhere — another tab, a device,
 * curl — removes it here too), and loaded again after every reconnect.
 */
export function useApprovals(): ApprovalsState {
  const { client, canvasSocket } = useSwitchboard();
  const [pending, setPending] = useState<PendingApproval[]>([]);
  const [error, setError] = useState<string>();

  useEffect(() => {
    let active = true;
    const cleanups: Array<() => void> = [];
    const load = async () => {
      try {
        const { requests } = await client.approvals.list({ status: 'pending', limit: 100 });
        if (active) setPending(requests.map(fromView).reverse());
      } catch (caught) {
        if (active) setError(caught instanceof Error ? caught.message : String(caught));
      }
    };
    void (async () => {
      const socket = await canvasSocket();
      if (!active) return;
      const onRequested = (request: ApprovalRequested) =>
        setPending((list) => (list.some((item) => item.approvalId === request.approvalId) ? list : [...list, request]));
      const onResolved = ({ approvalId }: { approvalId: string }) =>
        setPending((list) => list.filter((item) => item.approvalId !== approvalId));
      const onConnect = () => void load();
      socket.on('approval_requested', onRequested);
      socket.on('approval_resolved', onResolved);
      socket.on('connect', onConnect);
      cleanups.push(() => {
        socket.off('approval_requested', onRequested);
        socket.off('approval_resolved', onResolved);
        socket.off('connect', onConnect);
      });
      await load();
    })().catch((caught: unknown) => active && setError(caught instanceof Error ? caught.message : String(caught)));
    return () => {
      active = false;
      cleanups.forEach((cleanup) => cleanup());
    };
  }, [client, canvasSocket]);

  const decide = useCallback(
    async (approvalId: string, approved: boolean) => {
      const result = approved ? await client.approvals.approve(approvalId) : await client.approvals.reject(approvalId);
      setPending((list) => list.filter((item) => item.approvalId !== approvalId));
      return result;
    },
    [client],
  );
  const approve = useCallback((approvalId: string) => decide(approvalId, true), [decide]);
  const reject = useCallback((approvalId: string) => decide(approvalId, false), [decide]);
  return { pending, approve, reject, error };
}
